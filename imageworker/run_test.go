package imageworker

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/amqptest"
)

// The product shows processing while a run works on its images, and the
// run ends with the result.
func TestProcessingWhileRunning(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	seen := make(chan *productd.Product, 1)
	h.start(testConfig(), nil, hooks{fetched: func(string) {
		p, err := h.products.FindProductByID(context.Background(), h.onlyProduct())
		if err != nil {
			t.Error(err)
		}
		seen <- p
	}})
	p, ev := h.create(h.url("photo.jpg"))
	h.publish(ev, nil)
	during := <-seen
	if during.ImageStatus != productd.ImageStatusProcessing || during.Version != p.Version+1 {
		t.Fatalf("during the run: %s at version %d, want processing at %d", during.ImageStatus, during.Version, p.Version+1)
	}
	if got := h.waitStatus(p.ID, productd.ImageStatusDone, productd.ImageStatusFailed); got.ImageStatus != productd.ImageStatusDone || got.Version != p.Version+2 {
		t.Fatalf("after the run: %s at version %d", got.ImageStatus, got.Version)
	}
	if n := h.unfinishedRuns(p.ID); n != 0 {
		t.Fatalf("%d runs unfinished after the result", n)
	}
}

// A delivery whose run started before another delivery of the same event
// finished, and that then fails, leaves the product done: a late failure is
// dropped, not written over the result.
func TestLateFailureNeverUndoesDone(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var once sync.Once
	h.start(testConfig(), nil, hooks{fetched: func(string) {
		once.Do(func() {
			// Another worker's delivery of the same event finishes first.
			id := h.onlyProduct()
			p, err := h.products.FindProductByID(context.Background(), id)
			if err != nil {
				t.Error(err)
				return
			}
			if ok, err := h.products.SetImageResult(context.Background(), productd.ImageResult{
				ProductID: id, ImagesVersion: p.ImagesVersion, Status: productd.ImageStatusDone, CompressedImages: []string{"http://s3/x.jpg"},
			}); !ok || err != nil {
				t.Errorf("the other delivery's result: %v %v", ok, err)
			}
		})
		panic("decoder bug") // this delivery fails for good
	}})
	p, ev := h.create(h.url("photo.jpg"))
	h.publish(ev, nil)
	if out := h.outcome(ev.ID); out != "acked" {
		t.Fatalf("the late failure was %s, want dropped and acked", out)
	}
	if got, _ := h.products.FindProductByID(context.Background(), p.ID); got.ImageStatus != productd.ImageStatusDone {
		t.Fatalf("a late failure turned the done product %s (%q)", got.ImageStatus, got.ImageError)
	}
	if n := amqptest.Depth(t, h.topo.ParkingQueue); n != 0 {
		t.Fatalf("%d parked", n)
	}
}

// Deliveries that no run started (a worker prefetched the message, then
// shut down or lost its connection) do not count: a message the broker has
// delivered nearly its limit of times that way is still processed.
func TestUnstartedRedeliveriesDoNotCount(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	p, ev := h.create(h.url("photo.jpg"))
	h.publish(ev, nil)

	// A consumer that takes the message and gives it back without starting
	// it, as a stopping worker does with its prefetched messages.
	ch := amqptest.Channel(t)
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(h.topo.WorkQueue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var last amqp.Delivery
	for range h.topo.DeliveryLimit - 1 {
		select {
		case last = <-deliveries:
		case <-time.After(waitFor):
			t.Fatal("no delivery")
		}
		if err := last.Nack(false, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if n := deliveryCount(last); n != int64(h.topo.DeliveryLimit-2) {
		t.Fatalf("the last returned delivery had been delivered %d times before, want %d", n, h.topo.DeliveryLimit-2)
	}

	h.start(testConfig(), nil, hooks{})
	if got := h.waitStatus(p.ID, productd.ImageStatusDone, productd.ImageStatusFailed); got.ImageStatus != productd.ImageStatusDone {
		t.Fatalf("%s %q: deliveries that never ran were counted", got.ImageStatus, got.ImageError)
	}
	if out := h.waitOutcomes(ev.ID, 2); out[0] != "renewed" || out[1] != "acked" {
		t.Fatalf("outcomes %v, want renewed then acked", out)
	}
}

// Runs that start and never end do count: when a worker dies holding the
// images (here: it hangs and loses its connection, so the broker hands the
// message on), the next worker gives up once MaxUnfinishedRuns such runs
// are recorded, instead of dying on the same file again.
func TestRunsThatNeverEndAreCounted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := testConfig()
	cfg.MaxUnfinishedRuns = 1
	cfg.FetchTimeout = time.Minute
	cfg.DrainTimeout = 50 * time.Millisecond
	first := h.start(cfg, nil, hooks{})
	p, ev := h.create(h.images.URL + "/hang.jpg")
	h.publish(ev, nil)
	h.waitProcessing(first)
	first.broker.Close() // the message goes back to the queue, its run goes on

	h.start(cfg, nil, hooks{})
	got := h.waitStatus(p.ID, productd.ImageStatusFailed, productd.ImageStatusDone)
	if want := "stopped without an end 1 time"; got.ImageStatus != productd.ImageStatusFailed || !strings.Contains(got.ImageError, want) {
		t.Fatalf("%s %q, want failed saying %q", got.ImageStatus, got.ImageError, want)
	}
	if r, _ := amqptest.Collect(t, h.topo.ParkingQueue, 1)[0].Headers[HeaderReason].(string); r != got.ImageError {
		t.Fatalf("parked with reason %q", r)
	}
}

// A delete event the broker delivered nearly its limit of times is parked
// with the reason before the broker would drop it silently.
func TestDeleteDeliveredTooOftenIsParked(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(testConfig(), nil, hooks{})
	ev := productd.Event{SchemaVersion: 1, ID: "del-loop", Type: productd.EventProductDeleted, ProductID: 5, ProductVersion: 2}
	h.publish(ev, amqp.Table{"x-delivery-count": int64(h.topo.DeliveryLimit - 1)})
	parked := amqptest.Collect(t, h.topo.ParkingQueue, 1)
	if r, _ := parked[0].Headers[HeaderReason].(string); !strings.Contains(r, "delivered 9 times without being settled") {
		t.Fatalf("parked with reason %q", r)
	}
}

// onlyProduct returns the id of the one product in the harness's database.
func (h *harness) onlyProduct() int64 {
	h.t.Helper()
	var id int64
	if err := h.pool.QueryRow(context.Background(), `SELECT id FROM products`).Scan(&id); err != nil {
		h.t.Errorf("the one product: %v", err)
	}
	return id
}

// unfinishedRuns reads the runs Postgres counts as started and not ended.
func (h *harness) unfinishedRuns(id int64) int {
	h.t.Helper()
	var n int
	if err := h.pool.QueryRow(context.Background(), `SELECT image_runs FROM products WHERE id = $1`, id).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// A delivery that comes after the images got their result, or after the
// product is gone, is acknowledged without a run.
func TestLateDeliveriesNeedNoRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	h.start(testConfig(), nil, hooks{})
	p, ev := h.create(h.url("photo.jpg"))
	h.publish(ev, nil)
	done := h.waitStatus(p.ID, productd.ImageStatusDone)
	h.publish(ev, nil)
	if out := h.waitOutcomes(ev.ID, 2); out[1] != "acked" {
		t.Fatalf("the late duplicate: %v", out)
	}
	if got, _ := h.products.FindProductByID(ctx, p.ID); got.Version != done.Version {
		t.Fatalf("the late duplicate moved the version %d -> %d", done.Version, got.Version)
	}
	gone, evGone := h.create(h.url("photo.jpg"))
	if err := h.products.DeleteProduct(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	h.publish(evGone, nil)
	if out := h.outcome(evGone.ID); out != "acked" {
		t.Fatalf("the event of a deleted product: %v", out)
	}
	if keys := h.keys(gone.ID); len(keys) != 0 {
		t.Fatalf("objects stored for a deleted product: %v", keys)
	}
}

// staleFinds is a product service whose reads lag behind (a cache that has
// not heard of the last write yet) and whose first run fails to record.
type staleFinds struct {
	productd.ProductService
	mu        sync.Mutex
	failStart int
	stale     map[int64]productd.Product
}

func (s *staleFinds) FindProductByID(ctx context.Context, id int64) (*productd.Product, error) {
	s.mu.Lock()
	p, ok := s.stale[id]
	s.mu.Unlock()
	if ok {
		return &p, nil
	}
	return s.ProductService.FindProductByID(ctx, id)
}

func (s *staleFinds) StartImageRun(ctx context.Context, id, version int64) (productd.ImageRun, error) {
	s.mu.Lock()
	fail := s.failStart > 0
	s.failStart--
	s.mu.Unlock()
	if fail {
		return productd.ImageRun{}, productd.Errorf(productd.EUNAVAILABLE, "The database is unavailable; retry later.")
	}
	return s.ProductService.StartImageRun(ctx, id, version)
}

// The run is recorded in Postgres, not decided by a read: images a stale
// read still shows pending get no run once they are done, and a run that
// cannot be recorded is retried like any transient failure.
func TestRunsAreRecordedNotRead(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	svc := &staleFinds{ProductService: h.products, failStart: 1, stale: map[int64]productd.Product{}}
	h.run(testConfig(), svc, nil, hooks{})

	p, ev := h.create(h.url("photo.jpg"))
	h.publish(ev, nil)
	if got := h.waitStatus(p.ID, productd.ImageStatusDone, productd.ImageStatusFailed); got.ImageStatus != productd.ImageStatusDone {
		t.Fatalf("after a run that could not be recorded: %s %q", got.ImageStatus, got.ImageError)
	}
	if out := h.waitOutcomes(ev.ID, 2); out[0] != h.topo.RetryQueue(50*time.Millisecond) || out[1] != "acked" {
		t.Fatalf("outcomes %v, want a retry then acked", out)
	}

	done := h.waitStatus(p.ID, productd.ImageStatusDone)
	svc.mu.Lock()
	svc.stale[p.ID] = *p // pending, as it was created
	svc.mu.Unlock()
	h.publish(ev, nil)
	if out := h.waitOutcomes(ev.ID, 3); out[2] != "acked" {
		t.Fatalf("outcomes %v", out)
	}
	if got := h.waitStatus(p.ID, productd.ImageStatusDone); got.Version != done.Version {
		t.Fatalf("a run started on done images: version %d -> %d", done.Version, got.Version)
	}
}
