package imageworker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/imagesweep"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/imagetest"
	"github.com/productd/productd/internal/s3test"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/storage"
)

// MinIO away for longer than the whole retry ladder: the message is parked
// but the product does not fail, since its images are not at fault; it
// stays unfinished until the sweep schedules it again, and then ends done.
func TestStorageOutageOutlastingTheRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	proxy := s3test.NewProxy(t)
	cfg := h.storeCfg
	cfg.Endpoint, cfg.MaxRetries = proxy.Addr(), 1
	viaProxy, err := storage.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.start(testConfig(), viaProxy, hooks{})

	proxy.Cut()
	p, ev := h.create(h.url("photo.jpg"))
	h.publish(ev, nil)
	parked := amqptest.Collect(t, h.topo.ParkingQueue, 1)
	if r, _ := parked[0].Headers[HeaderReason].(string); !strings.Contains(r, "the image storage is unavailable (gave up after 4 attempts); the images wait for the sweep") {
		t.Fatalf("parked with reason %q", r)
	}
	if got, _ := h.products.FindProductByID(ctx, p.ID); got.ImageStatus != productd.ImageStatusProcessing {
		t.Fatalf("after the retries ran out: %s %q, want processing, waiting for the sweep", got.ImageStatus, got.ImageError)
	}

	proxy.Restore()
	h.published()
	res, err := imagesweep.New(imagesweep.Config{StuckAfter: time.Nanosecond}, h.pool, h.products, logging.Discard()).Sweep(ctx)
	if err != nil || res.Rescheduled != 1 {
		t.Fatalf("sweep: %+v %v, want the product re-scheduled", res, err)
	}
	h.publish(h.lastEvent(p.ID), nil) // as the relay does
	if got := h.waitStatus(p.ID, productd.ImageStatusDone, productd.ImageStatusFailed); got.ImageStatus != productd.ImageStatusDone {
		t.Fatalf("after the sweep: %s %q", got.ImageStatus, got.ImageError)
	}
}

// Replaying the parking lot sends every parked message back to work with
// its attempts reset: a failed product's images are scheduled again (and
// end done now that their cause is fixed), a deletion goes back to the
// work queue, and a message that no longer matters is dropped.
func TestReplayParkingLot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	h.start(testConfig(), nil, hooks{})

	failed, ev := h.create(h.images.URL + "/files/later.jpg") // 404 for now
	h.publish(ev, nil)
	h.waitStatus(failed.ID, productd.ImageStatusFailed)
	done, evDone := h.create(h.url("photo.jpg"))
	h.publish(evDone, nil)
	doneBefore := h.waitStatus(done.ID, productd.ImageStatusDone)
	del := productd.Event{SchemaVersion: 1, ID: "del-parked", Type: productd.EventProductDeleted, ProductID: 1 << 40, ProductVersion: 2}
	for _, e := range []productd.Event{evDone, del} { // a parked duplicate, a deletion parked while storage was away
		h.publishTo(h.topo.DeadLetterExchange, e, amqp.Table{HeaderReason: "test", HeaderAttempt: int64(5)})
	}
	h.waitDepth(h.topo.ParkingQueue, 3)

	h.serve("later.jpg", imagetest.Read(t, "photo.jpg"))
	actions := NewActions(h.products, amqptest.NewBroker(t, broker.Config{Topology: h.topo}, logging.Discard()), logging.Discard())
	defer actions.Close()
	r, err := actions.Replay(ctx, 10, "the image host is fixed")
	if err != nil || r != (Replayed{Rescheduled: 1, Requeued: 1, Dropped: 1}) {
		t.Fatalf("replay: %+v %v", r, err)
	}
	if n := amqptest.Depth(t, h.topo.ParkingQueue); n != 0 {
		t.Fatalf("%d messages left in the parking lot", n)
	}
	rerun := h.lastEvent(failed.ID)
	h.publish(rerun, nil)
	if got := h.waitStatus(failed.ID, productd.ImageStatusDone, productd.ImageStatusFailed); got.ImageStatus != productd.ImageStatusDone {
		t.Fatalf("the replayed product: %s %q", got.ImageStatus, got.ImageError)
	}
	if _, _, reason := h.reschedules(failed.ID); reason != "parking lot replay: the image host is fixed" {
		t.Errorf("reason recorded %q", reason)
	}
	if out := h.outcome(del.ID); out != "acked" {
		t.Errorf("the replayed deletion: %s", out)
	}
	if got, _ := h.products.FindProductByID(ctx, done.ID); got.Version != doneBefore.Version {
		t.Errorf("the done product was touched by the replay: version %d, was %d", got.Version, doneBefore.Version)
	}
	if n, err := actions.ReplayParking(ctx, 10); n != 0 || err != nil {
		t.Errorf("replaying an empty parking lot: %d %v", n, err)
	}
}

// An operator re-runs a failed product's images, whatever failed them.
func TestRescheduleByAnOperator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	h.start(testConfig(), nil, hooks{})
	p, ev := h.create(h.images.URL + "/files/soon.jpg")
	h.publish(ev, nil)
	h.waitStatus(p.ID, productd.ImageStatusFailed)
	h.serve("soon.jpg", imagetest.Read(t, "photo.jpg"))
	actions := NewActions(h.products, amqptest.NewBroker(t, broker.Config{Topology: h.topo}, logging.Discard()), logging.Discard())
	defer actions.Close()
	if err := actions.Reschedule(ctx, p.ID, "the image is there now"); err != nil {
		t.Fatal(err)
	}
	if n, _, reason := h.reschedules(p.ID); n != 1 || reason != "operator: the image is there now" {
		t.Fatalf("%d re-schedules, reason %q", n, reason)
	}
	h.publish(h.lastEvent(p.ID), nil)
	if got := h.waitStatus(p.ID, productd.ImageStatusDone, productd.ImageStatusFailed); got.ImageStatus != productd.ImageStatusDone {
		t.Fatalf("after the re-run: %s %q", got.ImageStatus, got.ImageError)
	}
	if err := actions.Reschedule(ctx, 1<<40, "x"); productd.ErrorCode(err) != productd.ENOTFOUND {
		t.Fatalf("re-run of a missing product: %v", err)
	}
}

// published marks every outbox row published, as a relay that keeps up
// would have.
func (h *harness) published() {
	h.t.Helper()
	if _, err := h.pool.Exec(context.Background(), `UPDATE outbox SET status = 'published', published_at = now()`); err != nil {
		h.t.Fatal(err)
	}
}

// reschedules reads a product's count of re-schedules and their last
// reason.
func (h *harness) reschedules(id int64) (n int, version int64, reason string) {
	h.t.Helper()
	if err := h.pool.QueryRow(context.Background(), `SELECT image_reschedules, images_version, image_reschedule_reason FROM products WHERE id = $1`, id).Scan(&n, &version, &reason); err != nil {
		h.t.Fatal(err)
	}
	return n, version, reason
}

// publishTo publishes ev to exchange, as the worker parks a message.
func (h *harness) publishTo(exchange string, ev productd.Event, headers amqp.Table) {
	h.t.Helper()
	body, err := json.Marshal(ev)
	if err != nil {
		h.t.Fatal(err)
	}
	res := h.pub.Publish(context.Background(), []broker.Message{{Exchange: exchange,
		Publishing: amqp.Publishing{MessageId: ev.ID, ContentType: "application/json", Body: body, Headers: headers}}})
	if !res[0].Published() {
		h.t.Fatalf("publish: %v", res[0].Err)
	}
}

// waitDepth waits until queue holds n messages.
func (h *harness) waitDepth(queue string, n int) {
	h.t.Helper()
	h.waitUntil(fmt.Sprintf("%s holds %d messages", queue, n), func() bool { return amqptest.Depth(h.t, queue) == n })
}
