package relay_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/api"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/relay"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

// waitFor bounds every wait of these tests.
const waitFor = 30 * time.Second

// newPool returns a pool on a fresh database, large enough for a relay's
// River client, its batches and the test's own writers.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), dbtest.New(t)+"&pool_max_conns=16")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// testLogger writes to the test's log, shown when it fails or with -v, and
// falls silent when the test ends (goroutines may outlive it briefly).
func testLogger(t testing.TB) *logrus.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop) // registered first, so it runs last
	log, err := logging.New(w, "debug", "text")
	if err != nil {
		t.Fatal(err)
	}
	return log
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
}

// newRelay returns a relay on pool publishing through b.
func newRelay(t testing.TB, pool *pgxpool.Pool, b *broker.Broker, cfg relay.Config, log *logrus.Logger) *relay.Relay {
	t.Helper()
	r, err := relay.New(pool, b, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run runs r until the test ends, and fails the test if Run fails.
func run(t testing.TB, r *relay.Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay run: %v", err)
		}
	})
}

// post creates a product through the API and returns the status.
func post(t testing.TB, srv http.Handler, name string) int {
	t.Helper()
	body := `{"user_id":1,"product_name":"` + name + `","product_price":9.99,"product_images":["https://img.example/a.jpg"]}`
	req := httptest.NewRequest(http.MethodPost, "/products", bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec.Code
}

func newAPI(pool *pgxpool.Pool) http.Handler {
	return api.NewServer(api.Config{Products: db.NewProductService(pool), Log: logging.Discard()})
}

// insert commits outbox rows of the given event types straight into the
// table, bypassing products, and returns their event ids.
func insert(t testing.TB, pool *pgxpool.Pool, types ...string) []string {
	t.Helper()
	var ids []string
	err := db.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(context.Background(), `
			INSERT INTO outbox (event_id, event_type, product_id, payload)
			SELECT gen_random_uuid(), t, 1, jsonb_build_object('type', t)
			FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n)
			ORDER BY n
			RETURNING event_id::text`, types)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// backlog commits n product.created rows in one statement.
func backlog(t testing.TB, pool *pgxpool.Pool, n int) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		INSERT INTO outbox (event_id, event_type, product_id, payload)
		SELECT id, 'product.created', g, jsonb_build_object('event_id', id, 'type', 'product.created', 'product_id', g)
		FROM (SELECT g, gen_random_uuid() AS id FROM generate_series(1, $1) AS g) AS u`, n)
	if err != nil {
		t.Fatal(err)
	}
}

// counts returns the number of outbox rows by status.
func counts(t testing.TB, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT status, count(*) FROM outbox GROUP BY status`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		out[s] = n
	}
	return out
}

// eventIDs returns the event ids of the outbox rows with status.
func eventIDs(t testing.TB, pool *pgxpool.Pool, status string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT event_id::text FROM outbox WHERE status = $1`, status)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// await polls cond until it holds, failing t after waitFor.
func await(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// allPublished reports whether every row of pool's outbox is published.
func allPublished(t testing.TB, pool *pgxpool.Pool, total int) func() bool {
	return func() bool { return counts(t, pool)["published"] == total }
}

// brokerFor starts a broker with fast reconnection on url (the proxy's, or
// the test RabbitMQ's when empty).
func brokerFor(t testing.TB, url string, topo broker.Topology) *broker.Broker {
	t.Helper()
	return amqptest.NewBroker(t, broker.Config{URL: url, Topology: topo, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}, logging.Discard())
}

// expectCopies drains queue and checks that it held exactly copies messages
// of each of ids, and nothing else.
func expectCopies(t testing.TB, queue string, ids []string, copies int) {
	t.Helper()
	got := amqptest.Drain(t, queue)
	seen := amqptest.CountIDs(got)
	for _, id := range ids {
		if seen[id] != copies {
			t.Errorf("event %s reached %s %d times, want %d", id, queue, seen[id], copies)
		}
	}
	if len(got) != copies*len(ids) {
		t.Errorf("%s held %d messages, want %d", queue, len(got), copies*len(ids))
	}
}
