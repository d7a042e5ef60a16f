package ops_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/ops"
)

// waitFor bounds every wait; the broker's management API refreshes its
// figures every few seconds.
const waitFor = 30 * time.Second

// fixture is a deployment's database and broker with a console on them.
type fixture struct {
	pool    *pgxpool.Pool
	broker  *broker.Broker
	console *ops.Console
}

func newFixture(t *testing.T, cfg ops.Config) *fixture {
	t.Helper()
	f := &fixture{pool: dbtest.NewPool(t)}
	f.broker = amqptest.NewBroker(t, broker.Config{}, logging.Discard())
	cfg.Pool, cfg.AMQPURL, cfg.Broker, cfg.Log = f.pool, amqptest.URL(t), f.broker, logging.Discard()
	c, err := ops.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.console = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	// The console stops before the broker's clean-up deletes what it
	// declared under the topology's prefix (the parking log).
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return f
}

// create makes n products with one image each and returns their ids; each
// has a pending outbox row.
func (f *fixture) create(t *testing.T, n int) []int64 {
	t.Helper()
	svc := db.NewProductService(f.pool)
	ids := make([]int64, n)
	for i := range n {
		c, err := svc.CreateProduct(context.Background(), &productd.Product{
			UserID: 1, Name: fmt.Sprint("p", i), Price: productd.Price(100),
			Images: []string{"https://example.com/a.jpg"},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = c.ProductID
	}
	return ids
}

func (f *fixture) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := f.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) count(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := f.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// await polls cond until it holds, failing t after waitFor with what
// cond last said.
func await(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The overview's counts are the tables' counts; the actions change them and
// are recorded with who took them.
func TestOverviewCountsMatchTheTablesAndActionsChangeThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, ops.Config{Cache: func() cache.Stats {
		return cache.Stats{Hits: 3, LocalHits: 1, Misses: 4, Breaker: cache.BreakerClosed, Generation: 7}
	}})
	ids := f.create(t, 8)
	f.exec(t, `UPDATE outbox SET status = 'dead', attempts = 10, last_error = 'nacked: queue full' WHERE product_id = ANY($1)`, ids[:3])
	f.exec(t, `UPDATE outbox SET status = 'published', published_at = now() WHERE product_id = ANY($1)`, ids[3:5])
	f.exec(t, `UPDATE outbox SET attempts = 2, last_error = 'returned: NO_ROUTE', next_attempt_at = now() + interval '1 hour' WHERE product_id = $1`, ids[5])
	f.exec(t, `UPDATE products SET image_status = 'failed', image_error = 'image 1: not an image' WHERE id = $1`, ids[3])
	f.exec(t, `UPDATE products SET image_status = 'done' WHERE id = $1`, ids[4])
	f.exec(t, `UPDATE products SET image_status = 'processing' WHERE id = $1`, ids[6])
	f.exec(t, `ANALYZE products, outbox`)

	o, err := f.console.Overview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]ops.Count{
		"pending": o.Outbox.Pending, "dead": o.Outbox.Dead, "retrying": o.Outbox.Retrying, "due": o.Outbox.Due,
	} {
		where := map[string]string{
			"pending": `status = 'pending'`, "dead": `status = 'dead'`, "retrying": `status = 'pending' AND attempts > 0`,
			"due": `status = 'pending' AND next_attempt_at <= now()`,
		}[name]
		if want := f.count(t, `SELECT count(*) FROM outbox WHERE `+where); got.N != want || got.Estimate {
			t.Errorf("outbox %s = %+v, the table has %d", name, got, want)
		}
	}
	for _, status := range []productd.ImageStatus{productd.ImageStatusPending, productd.ImageStatusProcessing, productd.ImageStatusFailed} {
		want := f.count(t, `SELECT count(*) FROM products WHERE image_status = $1`, string(status))
		if got := o.Pipeline.Products[status]; got.N != want || got.Estimate {
			t.Errorf("products %s = %+v, the table has %d", status, got, want)
		}
	}
	if done := o.Pipeline.Products[productd.ImageStatusDone]; !done.Estimate || done.N != 1 {
		t.Errorf("products done = %+v, want an estimate of 1", done)
	}
	if len(o.Dead.Rows) != 3 || o.Dead.Rows[0].LastError != "nacked: queue full" || o.Dead.Rows[0].ProductID != ids[2] {
		t.Errorf("dead page = %+v", o.Dead)
	}
	if len(o.Outbox.NextRetries) != 1 || o.Outbox.NextRetries[0].ProductID != ids[5] || len(o.Outbox.RetryGroups) != 1 || o.Outbox.RetryGroups[0].Attempts != 2 {
		t.Errorf("retries = %+v, %+v", o.Outbox.RetryGroups, o.Outbox.NextRetries)
	}
	if len(o.Pipeline.Failures) != 1 || o.Pipeline.Failures[0].ProductID != ids[3] || o.Pipeline.Failures[0].Error != "image 1: not an image" {
		t.Errorf("failures = %+v", o.Pipeline.Failures)
	}
	wantCache := ops.Cache{Available: true, HitRatio: 0.5, LocalHits: 1, Hits: 3, Misses: 4, Breaker: "closed", Generation: 7}
	if diff := cmp.Diff(wantCache, o.Cache); diff != "" {
		t.Errorf("cache (-want +got):\n%s", diff)
	}
	if !o.Relays.Broker.Reachable || o.Relays.Broker.Version == "" || len(o.Relays.Broker.Nodes) == 0 {
		t.Errorf("broker = %+v", o.Relays.Broker)
	}
	if len(o.Flow.Stages) != 7 || o.Flow.Stages[0].Name != "api" || o.Flow.Stages[6].Name != "done" {
		t.Fatalf("flow = %+v", o.Flow)
	}
	if relay := o.Flow.Stages[2]; relay.Health != ops.HealthDown || !strings.Contains(relay.Note, "no relay process") {
		t.Errorf("relay stage with no relay running = %+v", relay)
	}

	// Requeue one, requeue the rest through a filter, discard none left:
	// the figures follow.
	if err := f.console.RequeueDead(ctx, "alice", o.Dead.Rows[0].ID); err != nil {
		t.Fatal(err)
	}
	if n, err := f.console.RequeueDeadMatching(ctx, "bob", ops.DeadFilter{ErrorContains: "QUEUE"}); err != nil || n != 2 {
		t.Fatalf("requeue matching: %d, %v", n, err)
	}
	o2, err := f.console.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if o2.Dead.N != 0 || o2.Pending.N != o.Outbox.Pending.N+3 {
		t.Errorf("after requeueing: dead %+v, pending %+v (was %+v)", o2.Dead, o2.Pending, o.Outbox.Pending)
	}
	f.exec(t, `UPDATE outbox SET status = 'dead' WHERE product_id = $1`, ids[7])
	dead, err := f.console.Dead(ctx, ops.DeadFilter{ProductID: ids[7]}, 0)
	if err != nil || len(dead.Rows) != 1 {
		t.Fatalf("dead of product %d: %+v, %v", ids[7], dead, err)
	}
	if err := f.console.DiscardDead(ctx, "carol", dead.Rows[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := f.console.DiscardDead(ctx, "carol", dead.Rows[0].ID); productd.ErrorCode(err) != productd.ENOTFOUND {
		t.Errorf("discarding twice: %v, want not found", err)
	}
	if n := f.count(t, `SELECT count(*) FROM outbox WHERE product_id = $1`, ids[7]); n != 0 {
		t.Errorf("the discarded row is still there")
	}

	if err := f.console.PauseRelay(ctx, "dave", "broker upgrade"); err != nil {
		t.Fatal(err)
	}
	r, err := f.console.Relays(ctx)
	if err != nil || !r.Paused || r.ChangedBy != "dave" || r.Reason != "broker upgrade" {
		t.Errorf("after pause: %+v, %v", r, err)
	}
	flow, err := f.console.Flow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if relay := flow.Stages[2]; relay.Health != ops.HealthWarn || !strings.Contains(relay.Note, "paused for maintenance by dave") {
		t.Errorf("relay stage while paused = %+v", relay)
	}
	if err := f.console.ResumeRelay(ctx, "dave", "done"); err != nil {
		t.Fatal(err)
	}
	if r, err := f.console.Relays(ctx); err != nil || r.Paused {
		t.Errorf("after resume: %+v, %v", r, err)
	}
	if _, err := f.console.ReplayParking(ctx, "erin", 10); productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Errorf("replay without the image pipeline: %v, want unavailable", err)
	}

	actions, err := f.console.Actions(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range actions {
		got = append(got, a.Actor+" "+a.Action+": "+a.Result)
	}
	want := []string{
		"erin replay parking lot: failed: replaying the parking lot is not available in this process",
		"dave resume relay: resumed", "dave pause relay: paused",
		fmt.Sprintf("carol discard dead row: failed: dead outbox row %d not found", dead.Rows[0].ID),
		"carol discard dead row: discarded", "bob requeue dead rows: requeued 2", "alice requeue dead row: requeued",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("recorded actions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A parked message is shown with its reason, read from the parking log,
// while the message in the parking lot stays exactly as it was.
func TestParkedMessagesAreReadWithoutTouchingTheParkingLot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, ops.Config{})
	ids := f.create(t, 2)
	f.exec(t, `UPDATE products SET image_status = 'failed', image_error = 'image 1: 404' WHERE id = $1`, ids[0])
	topo := f.console.Topology()
	await(t, "the parking log to be declared", func() (bool, string) {
		ch := amqptest.Channel(t)
		_, err := ch.QueueDeclarePassive(topo.ParkingQueue+".log", true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeStream})
		return err == nil, fmt.Sprint(err)
	})
	ch := amqptest.Channel(t)
	for i, id := range ids {
		err := ch.PublishWithContext(ctx, topo.DeadLetterExchange, "", false, false, amqp.Publishing{
			MessageId: fmt.Sprint("ev-", i), Type: "product.created",
			Headers: amqp.Table{"x-productd-reason": fmt.Sprint("image 1: 404 #", i), "x-productd-attempt": int64(i)},
			Body:    fmt.Appendf(nil, `{"product_id":%d,"type":"product.created"}`, id),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// One the broker dead-lettered itself, past the work queue's delivery
	// limit: it has no reason header of the worker's.
	err := ch.PublishWithContext(ctx, topo.DeadLetterExchange, "", false, false, amqp.Publishing{
		MessageId: "ev-crash", Type: "product.created",
		Headers: amqp.Table{"x-death": []any{amqp.Table{"reason": "delivery_limit", "queue": topo.WorkQueue, "count": int64(1)}}},
		Body:    fmt.Appendf(nil, `{"product_id":%d,"type":"product.created"}`, ids[1]),
	})
	if err != nil {
		t.Fatal(err)
	}
	var p ops.Pipeline
	await(t, "the parked messages in the pipeline view", func() (bool, string) {
		var err error
		p, err = f.console.Pipeline(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var parking ops.Queue
		for _, q := range p.Queues {
			if q.Role == "parking" {
				parking = q
			}
		}
		return len(p.Parked) == 3 && parking.Messages == 3, fmt.Sprintf("parked %+v (%s), parking queue %+v", p.Parked, p.ParkedError, parking)
	})
	if m := p.Parked[1]; m.MessageID != "ev-1" || m.ProductID != ids[1] || m.Reason != "image 1: 404 #1" || m.Attempts != 1 {
		t.Errorf("second newest parked = %+v", m)
	}
	if m := p.Parked[0]; m.MessageID != "ev-crash" || !strings.HasPrefix(m.Reason, "dead-lettered by the broker") {
		t.Errorf("newest parked = %+v", m)
	}
	if len(p.Queues) != 7 || p.Queues[0].Role != "work" {
		t.Errorf("queues = %+v", p.Queues)
	}
	// Read again: the parking lot's messages were never delivered.
	if _, err := f.console.Pipeline(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range amqptest.Drain(t, topo.ParkingQueue) {
		if d.Redelivered || d.Headers["x-delivery-count"] != nil {
			t.Errorf("parked message %s was delivered before: redelivered %t, x-delivery-count %v", d.MessageId, d.Redelivered, d.Headers["x-delivery-count"])
		}
	}

	s, err := f.console.Product(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Where, "parked: image 1: 404 #0") || !strings.Contains(s.Why, "the worker gave up: image 1: 404") {
		t.Errorf("story of a parked product: where %q, why %q", s.Where, s.Why)
	}
}

// "Why is this product not done?" follows the product through each place it
// can wait.
func TestProductStoryAnswersWhyItIsNotDone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, ops.Config{})
	ids := f.create(t, 4)
	why := func(id int64) ops.Story {
		t.Helper()
		s, err := f.console.Product(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := why(ids[0])
	if !s.Found || s.ImageStatus != productd.ImageStatusPending || len(s.Events) != 1 || s.Events[0].Status != "pending" ||
		s.Where != "the outbox" || !strings.Contains(s.Why, "waits in the outbox") {
		t.Errorf("pending story = %+v", s)
	}
	if err := f.console.PauseRelay(ctx, "ops", "maintenance"); err != nil {
		t.Fatal(err)
	}
	if s := why(ids[0]); !strings.Contains(s.Why, "paused for maintenance by ops") {
		t.Errorf("while paused: %q", s.Why)
	}

	f.exec(t, `UPDATE outbox SET status = 'dead', attempts = 10, last_error = 'nacked' WHERE product_id = $1`, ids[1])
	if s := why(ids[1]); s.Where != "the outbox, dead" || !strings.Contains(s.Why, fmt.Sprintf("Requeue outbox row %d", s.Events[0].RowID)) {
		t.Errorf("dead story: %q, %q", s.Where, s.Why)
	}
	f.exec(t, `UPDATE outbox SET attempts = 3, last_error = 'returned' WHERE product_id = $1`, ids[2])
	if s := why(ids[2]); !strings.Contains(s.Why, "refused its event 3 times (last: returned)") {
		t.Errorf("retrying story: %q", s.Why)
	}
	f.exec(t, `UPDATE outbox SET status = 'published', published_at = now() WHERE product_id = $1`, ids[3])
	if s := why(ids[3]); !strings.Contains(s.Why, "was published at") || !strings.Contains(s.Why, "no worker consumes") || s.Events[0].PublishedAt == nil {
		t.Errorf("published story: %q, %q", s.Where, s.Why)
	}
	f.exec(t, `UPDATE products SET image_status = 'done' WHERE id = $1`, ids[3])
	if s := why(ids[3]); s.Why != "it is done: every image is compressed" {
		t.Errorf("done story: %q", s.Why)
	}
	f.exec(t, `DELETE FROM outbox WHERE product_id = $1`, ids[0])
	if s := why(ids[0]); !strings.Contains(s.Why, "retention deleted it") {
		t.Errorf("story without rows: %q", s.Why)
	}
	if s := why(999999); s.Found || s.Why != "no product has this id" {
		t.Errorf("missing product: %+v", s)
	}
}
