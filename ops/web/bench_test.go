package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/ops"
	"github.com/productd/productd/ops/web"
)

// budget is the target of docs/ARCHITECTURE.md for every ops endpoint at
// 10 M outbox rows and 1 M products.
const budget = 100 * time.Millisecond

// BenchmarkOpsAPI measures every /ops/api endpoint, and the page, on a
// database of its own seeded with OPS_BENCH_OUTBOX historical outbox rows
// (default 10,000,000, published over the last hours) and
// OPS_BENCH_PRODUCTS products (default 1,000,000: 97 % done, 2 % failed,
// 1 % pending), plus a live backlog: 50,000 pending rows (above the exact
// counts' cap), 2,000 waiting for a retry and 20,000 dead. It reports each
// endpoint's mean time per request (ms/req) and that time as a share of the
// 100 ms budget (%budget). Seeding 10 M rows takes several minutes.
func BenchmarkOpsAPI(b *testing.B) {
	outboxRows := envInt("OPS_BENCH_OUTBOX", 10_000_000)
	products := envInt("OPS_BENCH_PRODUCTS", 1_000_000)
	ctx := context.Background()
	url := dbtest.New(b)
	pool, err := db.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	start := time.Now()
	seed(b, url, outboxRows, products)
	b.Logf("seeded %d outbox rows and %d products in %v", outboxRows, products, time.Since(start).Round(time.Second))

	brk := amqptest.NewBroker(b, broker.Config{}, logging.Discard())
	console, err := ops.New(ops.Config{Pool: pool, AMQPURL: amqptest.URL(b), Broker: brk, Log: logging.Discard()})
	if err != nil {
		b.Fatal(err)
	}
	// The console declares the parking log (a stream beside the parking
	// lot); it stops before the broker's clean-up deletes it.
	runCtx, cancel := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { console.Run(runCtx); close(ran) }()
	defer func() { cancel(); <-ran }()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	web.Mount(r, web.Config{Console: console, ClientAddr: func(*gin.Context) netip.Addr { return netip.MustParseAddr("127.0.0.1") }, Log: logging.Discard()})

	var failedProduct int64
	if err := pool.QueryRow(ctx, `SELECT id FROM products WHERE image_status = 'failed' ORDER BY id DESC LIMIT 1`).Scan(&failedProduct); err != nil {
		b.Fatal(err)
	}
	paths := []string{
		"/ops/api/overview", "/ops/api/flow", "/ops/api/outbox", "/ops/api/dead", "/ops/api/dead?error=refused",
		"/ops/api/relay", "/ops/api/pipeline", "/ops/api/cache", "/ops/api/actions",
		fmt.Sprint("/ops/api/products/", products/2), fmt.Sprint("/ops/api/products/", failedProduct), "/ops",
	}
	b.ResetTimer()
	for _, path := range paths {
		b.Run(strings.TrimPrefix(strings.ReplaceAll(path, "/", "_"), "_"), func(b *testing.B) {
			serve(b, r, path) // warm: plans cached, the parking log read once
			start := time.Now()
			for range b.N {
				serve(b, r, path)
			}
			per := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(per.Microseconds())/1000, "ms/req")
			b.ReportMetric(100*float64(per)/float64(budget), "%budget")
		})
	}
}

func serve(b *testing.B, h http.Handler, path string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s = %d %s", path, rec.Code, rec.Body.String())
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// seed fills the database at url: the history in one statement per table,
// then the live backlog, then VACUUM ANALYZE as autovacuum would have.
func seed(b *testing.B, url string, outboxRows, products int) {
	b.Helper()
	ctx := context.Background()
	// A connection of its own: the pool's statement timeout would stop the
	// seeding statements, which run for minutes.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	const payload = `{"schema_version":1,"event_id":"00000000-0000-7000-8000-000000000000","type":"product.created",` +
		`"product_id":1,"product_version":1,"images":["https://img.example.com/1.jpg"],"occurred_at":"2026-01-01T00:00:00Z"}`
	for _, step := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO products (user_id, product_name, product_price, product_images, compressed_product_images,
			image_status, image_error, created_at, updated_at)
		SELECT g % 1000 + 1, 'product ' || g, (g % 10000) / 100.0, ARRAY['https://img.example.com/' || g || '.jpg'],
			CASE WHEN g % 100 < 97 THEN ARRAY['http://127.0.0.1:9000/productd/products/' || g || '/0.jpg'] ELSE '{}' END,
			CASE WHEN g % 100 < 97 THEN 'done' WHEN g % 100 < 99 THEN 'failed' ELSE 'pending' END,
			CASE WHEN g % 100 IN (97, 98) THEN 'image 1 of 1: the server answered 404 Not Found' ELSE '' END,
			now() - ($1 - g) * interval '10 ms', now() - ($1 - g) * interval '5 ms'
		FROM generate_series(1, $1) AS g`, []any{products}},
		{`INSERT INTO outbox (event_id, event_type, product_id, payload, status, created_at, next_attempt_at, published_at)
		SELECT gen_random_uuid(), 'product.created', g % $2 + 1, $3::json, 'published', t, t, t + interval '3 ms'
		FROM generate_series(1, $1) AS g, LATERAL (SELECT now() - ($1 - g) * interval '1 ms' AS t) AS at`,
			[]any{outboxRows, products, payload}},
		{`INSERT INTO outbox (event_id, event_type, product_id, payload, status, attempts, last_error, created_at, next_attempt_at)
		SELECT gen_random_uuid(), 'product.created', g % $1 + 1, $2::json,
			CASE WHEN g <= 20000 THEN 'dead' ELSE 'pending' END,
			CASE WHEN g <= 20000 THEN 10 WHEN g <= 22000 THEN g % 9 + 1 ELSE 0 END,
			CASE WHEN g <= 20000 THEN 'nacked: the broker refused the message' WHEN g <= 22000 THEN 'returned: NO_ROUTE' ELSE '' END,
			now() - (72000 - g) * interval '1 ms',
			CASE WHEN g <= 22000 AND g > 20000 THEN now() + g * interval '1 ms' ELSE now() END
		FROM generate_series(1, 72000) AS g`, []any{products, payload}},
		{`VACUUM ANALYZE products`, nil},
		{`VACUUM ANALYZE outbox`, nil},
	} {
		if _, err := conn.Exec(ctx, step.sql, step.args...); err != nil {
			b.Fatalf("seed: %v\n%s", err, step.sql)
		}
	}
}
