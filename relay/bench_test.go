package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/imagetest"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/outbox"
	"github.com/productd/productd/relay"
)

// benchRows is the backlog BenchmarkDrainBacklog drains; RELAY_BENCH_ROWS
// overrides it for a quick look.
func benchRows(b *testing.B) int {
	if v := os.Getenv("RELAY_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("RELAY_BENCH_ROWS=%q: want a positive number", v)
		}
		return n
	}
	return 100_000
}

// BenchmarkDrainBacklog drains a backlog of pending rows and compares the
// rate with its ceiling, measured in the same iteration: a bare amqp091
// publisher with the same confirm window (the relay's batch size times its
// concurrency, as a sliding window) publishing the same bodies into the
// same quorum queue. Run it with -benchtime=1x and -count.
//
// The relay's rate is read from the rows themselves, as it would be of a
// relay in another process: the rows whose batches began before the last
// one did, over the time between the first batch's start and the last's
// (published_at is each batch's transaction start). Beside the rates it
// reports the CPU each side spent per message: the Go process (the relay,
// or the bare publisher) and the database's backends (claims and marks).
func BenchmarkDrainBacklog(b *testing.B) {
	cfg := relay.Config{} // the defaults are what is measured
	window := relay.DefaultBatchSize * relay.DefaultConcurrency
	n := benchRows(b)
	pool := newPool(b)
	brk := brokerFor(b, "", broker.Topology{})
	topo := brk.Topology()
	r := newRelay(b, pool, brk, cfg, logging.Discard())
	ctx := context.Background()
	body := sampleBody(b)
	admin := amqptest.Channel(b)

	var bareRate, relayRate, serialRate, bareCPU, relayCPU, relayPG []float64
	measureBare := func() {
		purge(b, admin, topo.WorkQueue)
		cpu := imagetest.CPUTime()
		took := barePublish(b, topo.Exchange, string(productd.EventProductCreated), body, n, window)
		bareCPU = append(bareCPU, perMessage(imagetest.CPUTime()-cpu, n))
		bareRate = append(bareRate, float64(n)/took.Seconds())
	}
	drain := func(pipeline bool) {
		purge(b, admin, topo.WorkQueue)
		if _, err := pool.Exec(ctx, `TRUNCATE outbox`); err != nil {
			b.Fatal(err)
		}
		backlog(b, pool, n, body)
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE outbox`); err != nil {
			b.Fatal(err)
		}
		relay.SetPipeline(r, pipeline)
		pg := backendCPU(b, pool)
		cpu := imagetest.CPUTime()
		published, err := r.Drain(ctx)
		if err != nil || published != int64(n) {
			b.Fatalf("drained %d of %d rows: %v", published, n, err)
		}
		if !pipeline {
			serialRate = append(serialRate, publishedRate(b, pool))
			return
		}
		relayCPU = append(relayCPU, perMessage(imagetest.CPUTime()-cpu, n))
		relayPG = append(relayPG, perMessage(backendCPU(b, pool)-pg, n))
		relayRate = append(relayRate, publishedRate(b, pool))
	}
	// RELAY_BENCH_SERIAL adds the relay without claiming ahead (each batch
	// claimed only once the one before it is committed), for comparison.
	serial := os.Getenv("RELAY_BENCH_SERIAL") != ""
	measureRelay := func() {
		drain(true)
		if serial {
			drain(false)
		}
	}
	for b.Loop() {
		// Each goes first once: whatever RabbitMQ still does after a purge
		// (truncating a quorum queue's log) then weighs on both alike.
		measureBare()
		measureRelay()
		measureRelay()
		measureBare()
	}
	b.StopTimer()
	bareMean, relayMean := mean(bareRate), mean(relayRate)
	b.ReportMetric(bareMean, "bare_msgs/s")
	b.ReportMetric(relayMean, "relay_rows/s")
	b.ReportMetric(100*relayMean/bareMean, "relay_%_of_bare")
	if serial {
		b.ReportMetric(mean(serialRate), "serial_rows/s")
		b.ReportMetric(100*mean(serialRate)/bareMean, "serial_%_of_bare")
	}
	b.ReportMetric(mean(bareCPU), "bare_cpu_µs/msg")
	b.ReportMetric(mean(relayCPU), "relay_cpu_µs/row")
	b.ReportMetric(mean(relayPG), "relay_pg_cpu_µs/row")
}

// publishedRate is the rate at which the outbox's rows were published,
// from their published_at: the rows of every batch but the last, over the
// time from the first batch's start to the last's.
func publishedRate(b *testing.B, pool *pgxpool.Pool) float64 {
	var rows int64
	var seconds float64
	err := pool.QueryRow(context.Background(), `
		WITH span AS (SELECT min(published_at) AS first, max(published_at) AS last FROM outbox)
		SELECT count(*) FILTER (WHERE published_at < span.last), extract(epoch FROM span.last - span.first)::float8
		FROM outbox, span GROUP BY span.first, span.last`).Scan(&rows, &seconds)
	if err != nil || seconds <= 0 {
		b.Fatalf("read the publication times: %v (%d rows in %f s)", err, rows, seconds)
	}
	return float64(rows) / seconds
}

// backendCPU is the CPU time, user and system, that the database's
// backends (every connection to pool's database) have used so far, read
// from /proc: Postgres runs on this machine.
func backendCPU(b *testing.B, pool *pgxpool.Pool) time.Duration {
	rows, err := pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // the backend has gone
		}
		// utime and stime are the 14th and 15th fields, counted after the
		// command name, which may hold spaces, in parentheses.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		utime, _ := strconv.ParseInt(fields[11], 10, 64)
		stime, _ := strconv.ParseInt(fields[12], 10, 64)
		total += time.Duration(utime+stime) * time.Second / clockTicks
	}
	return total
}

// clockTicks is the unit of /proc's CPU times (USER_HZ), 100 on Linux.
const clockTicks = 100

// perMessage is d per message, in microseconds.
func perMessage(d time.Duration, n int) float64 {
	return float64(d.Microseconds()) / float64(n)
}

// BenchmarkLatencyAt500PerSecond commits single outbox rows at a steady 500
// per second for RELAY_BENCH_SECONDS (default 10) with a running relay, and
// reports the time from each commit to the relay having its confirmation
// and committed the row's mark: commit → confirmed and recorded. The
// writers wake the relay after each commit as productd's processes do: in
// wake=notify through an outbox.Notifier (the API in a process of its own),
// in wake=signal through the relay's Wake (productd all).
func BenchmarkLatencyAt500PerSecond(b *testing.B) {
	seconds := 10
	if v := os.Getenv("RELAY_BENCH_SECONDS"); v != "" {
		var err error
		if seconds, err = strconv.Atoi(v); err != nil || seconds <= 0 {
			b.Fatalf("RELAY_BENCH_SECONDS=%q: want a positive number", v)
		}
	}
	for _, wake := range []string{"notify", "signal"} {
		b.Run("wake="+wake, func(b *testing.B) {
			pool := newPool(b)
			brk := brokerFor(b, "", broker.Topology{})
			r := newRelay(b, pool, brk, relay.Config{}, logging.Discard())
			wakeUp := r.Wake
			if wake == "notify" {
				n := outbox.NewNotifier(pool, outbox.NotifierConfig{})
				b.Cleanup(n.Start(context.Background()))
				wakeUp = n.Wake
			}
			tr := newTracker()
			relay.SetOnConfirmed(r, tr.confirmed)
			run(b, r)
			for b.Loop() {
				steadyWrites(b, pool, 500, seconds, tr, wakeUp)
			}
			b.StopTimer()
			lat := tr.sorted()
			pct := func(p float64) float64 {
				return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50_ms")
			b.ReportMetric(pct(0.99), "p99_ms")
			b.ReportMetric(pct(1), "max_ms")
		})
	}
}

// steadyWrites commits rate outbox rows a second for seconds from eight
// writers, each calling wake after its commit, and waits until tr has
// heard of every confirmation.
func steadyWrites(b *testing.B, pool *pgxpool.Pool, rate, seconds int, tr *tracker, wake func()) {
	ctx := context.Background()
	total := rate * seconds
	tr.reset()
	due := make(chan struct{}, total)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range due {
				ev, err := outbox.NewEvent(productd.EventProductCreated, 1, 1, []string{"https://img.example/a.jpg"})
				if err != nil {
					b.Error(err)
					return
				}
				err = db.InTx(ctx, pool, func(tx pgx.Tx) error { return outbox.Enqueue(ctx, tx, ev) })
				if err != nil {
					b.Error(err)
					return
				}
				tr.committed(ev.ID, time.Now())
				wake()
			}
		})
	}
	start := time.Now()
	for i := range total {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		due <- struct{}{}
	}
	close(due)
	wg.Wait()
	await(b, "every row published", func() bool { return tr.count() >= total })
}

// tracker pairs each event's commit with its confirmation, whichever it
// hears of first: a relay woken by the commit's notification can confirm
// before the committing goroutine gets to record its time.
type tracker struct {
	mu        sync.Mutex
	commits   map[string]time.Time
	confirms  map[string]time.Time
	latencies []time.Duration
}

func newTracker() *tracker {
	return &tracker{commits: map[string]time.Time{}, confirms: map[string]time.Time{}}
}

func (t *tracker) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.commits)
	clear(t.confirms)
	t.latencies = t.latencies[:0]
}

func (t *tracker) committed(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.confirms[id]; ok {
		delete(t.confirms, id)
		t.latencies = append(t.latencies, c.Sub(at))
		return
	}
	t.commits[id] = at
}

func (t *tracker) confirmed(ids []string) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		if c, ok := t.commits[id]; ok {
			delete(t.commits, id)
			t.latencies = append(t.latencies, now.Sub(c))
		} else {
			t.confirms[id] = now
		}
	}
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.latencies)
}

func (t *tracker) sorted() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Clone(t.latencies)
	slices.Sort(out)
	return out
}

// sampleBody is the JSON of a typical event, the body both publishers send.
func sampleBody(b *testing.B) []byte {
	ev, err := outbox.NewEvent(productd.EventProductCreated, 123456, 1, []string{"https://img.example/a.jpg", "https://img.example/b.jpg"})
	if err != nil {
		b.Fatal(err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// barePublish publishes n copies of body with amqp091 alone, keeping at most
// window confirmations outstanding, and returns how long it took until the
// last was confirmed.
func barePublish(b *testing.B, exchange, key string, body []byte, n, window int) time.Duration {
	conn, err := amqp.Dial(amqptest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	pending := make([]*amqp.DeferredConfirmation, n)
	start := time.Now()
	for i := range n {
		if i >= window && !pending[i-window].Wait() {
			b.Fatal("bare publisher: nack")
		}
		pending[i], err = ch.PublishWithDeferredConfirm(exchange, key, true, false, amqp.Publishing{
			MessageId: uuid.NewString(), ContentType: "application/json", Type: key,
			DeliveryMode: amqp.Persistent, Body: body,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, dc := range pending[max(0, n-window):] {
		if !dc.Wait() {
			b.Fatal("bare publisher: nack")
		}
	}
	return time.Since(start)
}

func purge(b *testing.B, ch *amqp.Channel, queue string) {
	if _, err := ch.QueuePurge(queue, false); err != nil {
		b.Fatal(err)
	}
}

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}
