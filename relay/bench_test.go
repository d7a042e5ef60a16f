package relay_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
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

	var bareRate, relayRate []float64
	for b.Loop() {
		b.StopTimer()
		purge(b, admin, topo.WorkQueue)
		b.StartTimer()
		bare := barePublish(b, topo.Exchange, string(productd.EventProductCreated), body, n, window)
		b.StopTimer()
		purge(b, admin, topo.WorkQueue)
		if _, err := pool.Exec(ctx, `TRUNCATE outbox`); err != nil {
			b.Fatal(err)
		}
		backlog(b, pool, n, body)
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE outbox`); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		published, err := r.Drain(ctx)
		took := time.Since(start)
		if err != nil || published != int64(n) {
			b.Fatalf("drained %d of %d rows: %v", published, n, err)
		}
		bareRate = append(bareRate, float64(n)/bare.Seconds())
		relayRate = append(relayRate, float64(n)/took.Seconds())
	}
	b.StopTimer()
	bareMean, relayMean := mean(bareRate), mean(relayRate)
	b.ReportMetric(bareMean, "bare_msgs/s")
	b.ReportMetric(relayMean, "relay_rows/s")
	b.ReportMetric(100*relayMean/bareMean, "relay_%_of_bare")
}

// BenchmarkLatencyAt500PerSecond commits single outbox rows at a steady 500
// per second for RELAY_BENCH_SECONDS (default 10) with a running relay, and
// reports the time from each commit to the relay having its confirmation
// and marked the row published.
func BenchmarkLatencyAt500PerSecond(b *testing.B) {
	seconds := 10
	if v := os.Getenv("RELAY_BENCH_SECONDS"); v != "" {
		var err error
		if seconds, err = strconv.Atoi(v); err != nil || seconds <= 0 {
			b.Fatalf("RELAY_BENCH_SECONDS=%q: want a positive number", v)
		}
	}
	const rate = 500
	pool := newPool(b)
	brk := brokerFor(b, "", broker.Topology{})
	r := newRelay(b, pool, brk, relay.Config{}, logging.Discard())
	var mu sync.Mutex
	committed := map[string]time.Time{}
	var latencies []time.Duration
	relay.SetOnConfirmed(r, func(ids []string) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if t, ok := committed[id]; ok {
				latencies = append(latencies, now.Sub(t))
			}
		}
	})
	run(b, r)
	ctx := context.Background()
	total := rate * seconds

	for b.Loop() {
		mu.Lock()
		clear(committed)
		latencies = latencies[:0]
		mu.Unlock()
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
					now := time.Now()
					if err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					committed[ev.ID] = now
					mu.Unlock()
				}
			})
		}
		start := time.Now()
		for i := range total {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
			due <- struct{}{}
		}
		close(due)
		wg.Wait()
		await(b, "every row published", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(latencies) >= total
		})
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(pct(1), "max_ms")
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
