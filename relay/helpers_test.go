package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/api"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/chores"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/outbox"
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

// run runs r and its chores until the test ends, as productd's relay role
// does, and fails the test if either fails.
func run(t testing.TB, r *relay.Relay) {
	t.Helper()
	runWith(t, r, chores.Config{})
}

// runWith runs r and its chores, with the chores' settings cfg, until the
// returned stop is called or the test ends. The chores start first and stop
// first: a sweep publishes through r.
func runWith(t testing.TB, r *relay.Relay, cfg chores.Config) (stop func()) {
	t.Helper()
	s := chores.New(relay.Pool(r), cfg, testLogger(t))
	if err := r.RegisterChores(s); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			s.Stop(context.Background())
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
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

// newAPI returns productd's API on pool as a process without a relay runs
// it: its writes wake the relays through a Notifier, which runs until the
// test ends.
func newAPI(t testing.TB, pool *pgxpool.Pool) http.Handler {
	n := outbox.NewNotifier(pool, outbox.NotifierConfig{})
	t.Cleanup(n.Start(context.Background()))
	products := db.NewProductServiceConfig(pool, db.ServiceConfig{Wake: n.Wake})
	return api.NewServer(api.Config{Products: products, Log: logging.Discard()})
}

// insert commits outbox rows of the given event types straight into the
// table, bypassing products, and returns their event ids.
func insert(t testing.TB, pool *pgxpool.Pool, types ...string) []string {
	t.Helper()
	var ids []string
	err := db.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(context.Background(), `
			INSERT INTO outbox (event_id, event_type, product_id, payload)
			SELECT gen_random_uuid(), t, 1, json_build_object('type', t)
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

// backlog commits n product.created rows in one statement. Each payload is
// base (a JSON object; nil means {}) with the row's own event_id and
// product_id.
func backlog(t testing.TB, pool *pgxpool.Pool, n int, base []byte) {
	t.Helper()
	if base == nil {
		base = []byte(`{}`)
	}
	_, err := pool.Exec(context.Background(), `
		INSERT INTO outbox (event_id, event_type, product_id, payload)
		SELECT id, 'product.created', g, ($2::jsonb || jsonb_build_object('event_id', id, 'product_id', g))::json
		FROM (SELECT g, gen_random_uuid() AS id FROM generate_series(1, $1) AS g) AS u`, n, string(base))
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

// writers create products through the API from several goroutines until
// stopped.
type writers struct {
	t               testing.TB
	posted, refused atomic.Int64
	lastRefusal     atomic.Int64
	stopOnce        func()
}

// startWriters starts n writers, each posting a product every interval (as
// fast as it can when zero).
func startWriters(t testing.TB, srv http.Handler, n int, interval time.Duration) *writers {
	w := &writers{t: t}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	w.stopOnce = sync.OnceFunc(func() { close(stop); wg.Wait() })
	for i := range n {
		wg.Go(func() {
			// A closed channel when interval is zero: always ready.
			tick := make(chan time.Time)
			close(tick)
			var next <-chan time.Time = tick
			if interval > 0 {
				ticker := time.NewTicker(interval)
				defer ticker.Stop()
				next = ticker.C
			}
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				select {
				case <-stop:
					return
				case <-next:
				}
				if code := post(t, srv, fmt.Sprintf("w%d-%d", i, j)); code == http.StatusCreated {
					w.posted.Add(1)
				} else {
					w.refused.Add(1)
					w.lastRefusal.Store(int64(code))
				}
			}
		})
	}
	return w
}

// stop stops the writers, fails the test if any POST was refused, and
// returns how many products were created.
func (w *writers) stop() int {
	w.t.Helper()
	w.stopOnce()
	if n := w.refused.Load(); n != 0 {
		w.t.Fatalf("%d POSTs refused, the last with %d", n, w.lastRefusal.Load())
	}
	return int(w.posted.Load())
}

// expectNothingLost checks, once every row is published, that no row lost
// an attempt on the way and that every event reached queue at least once.
func expectNothingLost(t testing.TB, pool *pgxpool.Pool, queue string, total int) {
	t.Helper()
	var maxAttempts int
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(max(attempts), 0) FROM outbox`).Scan(&maxAttempts); err != nil || maxAttempts != 0 {
		t.Errorf("rows lost attempts: max %d (%v)", maxAttempts, err)
	}
	seen := amqptest.CountIDs(amqptest.Drain(t, queue))
	missing := 0
	for _, id := range eventIDs(t, pool, "published") {
		if seen[id] == 0 {
			missing++
		}
	}
	if missing != 0 || len(seen) != total {
		t.Errorf("%d of %d events missing from %s; %d distinct message ids there", missing, total, queue, len(seen))
	}
}

// awaitStartSweep waits for the sweep that a relay's chores run on start to
// complete (it has asked the relay for a drain); with a long
// Config.SweepInterval no other sweep follows it.
func awaitStartSweep(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	await(t, "the sweep that runs on start", func() bool {
		var n int
		err := pool.QueryRow(context.Background(),
			`SELECT count(*) FROM river_job WHERE kind = 'outbox_sweep' AND state = 'completed'`).Scan(&n)
		return err == nil && n == 1
	})
}
