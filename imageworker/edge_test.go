package imageworker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/storage"
)

// A product deleted while its images are processed: the result is refused
// and the objects just stored are removed, since no delete event will come
// for them any more.
func TestProductDeletedWhileProcessing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(testConfig(), nil, hooks{stored: func(ev productd.Event) error {
		return h.products.DeleteProduct(context.Background(), ev.ProductID)
	}})
	p, ev := h.create(h.url("photo.jpg"))
	h.publish(ev, nil)
	if out := h.outcome(ev.ID); out != "acked" {
		t.Fatalf("outcome %v", out)
	}
	if keys := h.keys(p.ID); len(keys) != 0 {
		t.Fatalf("objects of the deleted product left: %v", keys)
	}
}

// A product whose images change while the old ones are processed keeps its
// new state; the old result is dropped, and the objects the old run stored
// are removed: their keys belong to images nobody has any more.
func TestImagesChangedWhileProcessing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var once sync.Once
	h.start(testConfig(), nil, hooks{stored: func(ev productd.Event) error {
		var err error
		once.Do(func() {
			images := []string{h.url("anim.gif")}
			_, err = h.products.UpdateProduct(context.Background(), ev.ProductID, productd.ProductUpdate{Images: &images})
		})
		return err
	}})
	p, ev := h.create(h.url("photo.jpg"))
	h.publish(ev, nil)
	if out := h.outcome(ev.ID); out != "acked" {
		t.Fatalf("outcome %v", out)
	}
	if got, _ := h.products.FindProductByID(context.Background(), p.ID); got.ImageStatus != productd.ImageStatusPending {
		t.Fatalf("status %s: the stale result was written", got.ImageStatus)
	}
	if keys := h.keys(p.ID); len(keys) != 0 {
		t.Fatalf("the stale run left %v", keys)
	}
}

// An input that panics a decoder fails its product instead of the process,
// whether the panic strikes while one image is processed or the event.
func TestPanicFailsTheProduct(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(testConfig(), nil, hooks{
		fetched: func(src string) {
			if strings.HasSuffix(src, "anim.gif") {
				panic("decoder bug")
			}
		},
		stored: func(productd.Event) error { panic("writer bug") },
	})
	a, evA := h.create(h.url("photo.jpg"), h.url("anim.gif"))
	b, evB := h.create(h.url("photo.jpg"))
	h.publish(evA, nil)
	h.publish(evB, nil)
	for p, want := range map[int64]string{
		a.ID: "image 2 of 2 (" + h.url("anim.gif") + "): processing failed unexpectedly (decoder bug)",
		b.ID: "processing failed unexpectedly (writer bug)",
	} {
		got := h.waitStatus(p, productd.ImageStatusFailed, productd.ImageStatusDone)
		if got.ImageStatus != productd.ImageStatusFailed || got.ImageError != want {
			t.Errorf("product %d: %s %q, want %q", p, got.ImageStatus, got.ImageError, want)
		}
	}
	amqptest.Collect(t, h.topo.ParkingQueue, 2)
}

// flakyProducts fails the first failure write, and can change the product
// just before one.
type flakyProducts struct {
	productd.ProductService
	mu         sync.Mutex
	failWrites int
	beforeFail func(productID int64)
}

func (f *flakyProducts) SetImageResult(ctx context.Context, res productd.ImageResult) (bool, error) {
	if res.Status == productd.ImageStatusFailed {
		f.mu.Lock()
		fail, before := f.failWrites > 0, f.beforeFail
		f.failWrites--
		f.beforeFail = nil
		f.mu.Unlock()
		if fail {
			return false, productd.Errorf(productd.EUNAVAILABLE, "The database is unavailable; retry later.")
		}
		if before != nil {
			before(res.ProductID)
		}
	}
	return f.ProductService.SetImageResult(ctx, res)
}

// A failure that cannot be recorded, the database being down, is retried
// rather than parked with the product left pending.
func TestFailureWriteIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.run(testConfig(), &flakyProducts{ProductService: h.products, failWrites: 1}, nil, hooks{})
	p, ev := h.create(h.url("not-an-image.jpg"))
	h.publish(ev, nil)
	got := h.waitStatus(p.ID, productd.ImageStatusFailed)
	if !strings.Contains(got.ImageError, "not an image") {
		t.Fatalf("image_error %q", got.ImageError)
	}
	if out := h.waitOutcomes(ev.ID, 2); out[0] != h.topo.RetryQueue(50*time.Millisecond) || out[1] != "parked" {
		t.Fatalf("outcomes %v, want a retry then the parking lot", out)
	}
}

// A failure for images the product no longer has is dropped: nobody needs
// to look at it.
func TestStaleFailureIsDropped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	flaky := &flakyProducts{ProductService: h.products}
	h.run(testConfig(), flaky, nil, hooks{})
	p, ev := h.create(h.url("not-an-image.jpg"))
	flaky.mu.Lock()
	flaky.beforeFail = func(id int64) {
		images := []string{h.url("photo.jpg")}
		if _, err := h.products.UpdateProduct(context.Background(), id, productd.ProductUpdate{Images: &images}); err != nil {
			t.Error(err)
		}
	}
	flaky.mu.Unlock()
	h.publish(ev, nil)
	if out := h.outcome(ev.ID); out != "acked" {
		t.Fatalf("outcome %v", out)
	}
	if got, _ := h.products.FindProductByID(context.Background(), p.ID); got.ImageStatus != productd.ImageStatusPending {
		t.Fatalf("status %s", got.ImageStatus)
	}
	if n := amqptest.Depth(t, h.topo.ParkingQueue); n != 0 {
		t.Fatalf("%d parked", n)
	}
}

// A delete, or the removal of what an images change replaced, with the
// storage away is retried.
func TestDeleteWithStorageDownIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := h.storeCfg
	cfg.Endpoint, cfg.MaxRetries = "127.0.0.1:1", 1
	down, err := storage.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.start(testConfig(), down, hooks{})
	for _, ev := range []productd.Event{
		{SchemaVersion: 1, ID: "del-1", Type: productd.EventProductDeleted, ProductID: 99, ProductVersion: 2},
		{SchemaVersion: 1, ID: "changed-1", Type: productd.EventProductImagesChanged, ProductID: 99, ProductVersion: 3, RemoveObjects: []string{"originals/x.png"}},
	} {
		h.publish(ev, nil)
		if out := h.outcome(ev.ID); out != h.topo.RetryQueue(50*time.Millisecond) {
			t.Fatalf("%s: outcome %v", ev.Type, out)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`[]`:                                  "not an event",
		`{"schema_version":1}`:                "no event_id or product_id",
		`{"schema_version":1,"event_id":"e"}`: "no event_id or product_id",
		`{"schema_version":0,"event_id":"e","product_id":1}`: "schema_version 0",
	} {
		if _, err := decodeEvent([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decodeEvent(%s) = %v, want %q", body, err, want)
		}
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	for _, v := range []any{int64(3), int32(3), int16(3), int8(3), 3} {
		if got := intHeader(amqp.Table{"n": v}, "n"); got != 3 {
			t.Errorf("intHeader(%T) = %d", v, got)
		}
	}
	if got := intHeader(amqp.Table{"n": "3"}, "n"); got != 0 {
		t.Errorf("a string header read as %d", got)
	}
	pub := republish(amqp.Delivery{Headers: amqp.Table{"x-death": 1, "x-delivery-count": 2, "trace": "t", HeaderAttempt: int64(1)}}, amqp.Table{HeaderReason: "r"})
	if _, ok := pub.Headers["x-death"]; ok || pub.Headers["trace"] != "t" || pub.Headers[HeaderReason] != "r" || pub.Headers[HeaderAttempt] != int64(1) {
		t.Errorf("republished headers %v", pub.Headers)
	}
}

func TestReasons(t *testing.T) {
	t.Parallel()
	long := "https://example.com/" + strings.Repeat("a", 200)
	ie := &imageError{index: 1, total: 3, url: long, err: productd.Errorf(productd.ENOTFOUND, "gone")}
	if got := reasonOf(ie, 2); !strings.HasPrefix(got, "image 2 of 3 (https://example.com/aaa") || !strings.HasSuffix(got, "...): gone (gave up after 2 attempts)") {
		t.Errorf("reason %q", got)
	}
	if got := reasonOf(errors.New("pq: secret detail"), 0); got != "Internal error." {
		t.Errorf("an internal error reached the reason: %q", got)
	}
	if !permanent(ie) || permanent(productd.Errorf(productd.EUNAVAILABLE, "x")) || permanent(context.DeadlineExceeded) {
		t.Error("permanent misclassifies")
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	w := h.start(Config{}, nil, hooks{})
	if _, err := New(Config{Quality: 101}, h.products, h.store, w.broker, logging.Discard()); err == nil {
		t.Fatal("a quality over 100 was accepted")
	}
	if _, err := New(Config{FetchAllow: []string{"10.0.0.0/40"}}, h.products, h.store, w.broker, logging.Discard()); err == nil {
		t.Fatal("a bad allow-list was accepted")
	}
}
