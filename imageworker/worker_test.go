package imageworker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/imagetest"
	"github.com/productd/productd/internal/s3test"
	"github.com/productd/productd/storage"
)

// Two products reach done: one with two URL images, one with an uploaded
// original read back from storage. Every compressed image is a valid image
// within the box, smaller than its original, and upright.
func TestImagesDone(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	w := h.start(testConfig(), nil, hooks{})

	a, evA := h.create(h.url("photo.jpg"), h.url("photo-exif6.jpg"))
	upload := h.upload("image/webp", imagetest.Read(t, "photo.webp"))
	b, evB := h.createOwning([]productd.Upload{upload})
	h.publish(evA, nil)
	h.publish(evB, nil)

	originals := map[string]string{h.url("photo.jpg"): "photo.jpg", h.url("photo-exif6.jpg"): "photo-exif6.jpg", upload.URL: "photo.webp"}
	for _, p := range []*productd.Product{a, b} {
		got := h.waitStatus(p.ID, productd.ImageStatusDone, productd.ImageStatusFailed)
		if got.ImageStatus != productd.ImageStatusDone || got.ImageError != "" || len(got.CompressedImages) != len(p.Images) {
			t.Fatalf("product %d: %s %q %v", p.ID, got.ImageStatus, got.ImageError, got.CompressedImages)
		}
		for i, u := range got.CompressedImages {
			if !strings.HasPrefix(u, h.storeCfg.PublicURL+"/products/") {
				t.Fatalf("compressed URL %q is not under the public URL", u)
			}
			img, body := download(t, u)
			bounds := img.Bounds()
			if bounds.Dx() > 256 || bounds.Dy() > 256 || max(bounds.Dx(), bounds.Dy()) != 256 {
				t.Errorf("%s is %v, want fitted into 256 px", u, bounds.Size())
			}
			if orig := imagetest.Read(t, originals[p.Images[i]]); len(body) >= len(orig) {
				t.Errorf("%s is %d bytes, its original %d", u, len(body), len(orig))
			}
			if originals[p.Images[i]] == "photo-exif6.jpg" {
				if err := imagetest.CheckUpright(img); err != nil {
					t.Errorf("%s: %v", u, err)
				}
			}
		}
		if keys := h.keys(p.ID); len(keys) != len(p.Images) {
			t.Errorf("product %d has objects %v, want %d", p.ID, keys, len(p.Images))
		}
	}
	if n := w.compressor.Decodes(); n != 3 {
		t.Errorf("%d images decoded, want 3", n)
	}
}

// Every bad input ends failed with a reason naming the image and the cause,
// and its message in the parking lot with the same reason. Only the corrupt
// file reaches a decoder: the bombs are refused from their headers.
func TestImagesFail(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := testConfig()
	// Only the fixture server's own address and port pass the guard.
	cfg.FetchAllow = []string{strings.TrimPrefix(h.images.URL, "http://")}
	w := h.start(cfg, nil, hooks{})

	cases := []struct{ url, reason string }{
		{h.url("corrupt.jpg"), "the jpeg file is corrupt or truncated"},
		{h.url("not-an-image.jpg"), "the file is not an image but text/plain"},
		{h.url("bomb.jpg"), "the image is 20000x20000 pixels (400 megapixels); the limit is 50 megapixels"},
		{h.url("bomb.png"), "the image is 20000x20000 pixels"},
		{h.url("missing.jpg"), "the server answered 404 Not Found"},
		{"http://10.0.0.1/x.jpg", "the URL leads to an address that is not allowed"},
		{"http://169.254.169.254/latest/meta-data/", "the URL leads to an address that is not allowed"},
		// A name leading to loopback, on a port the allow-list does not open.
		{"http://localhost:1/x.jpg", "the URL leads to an address that is not allowed"},
	}
	ids := map[int64]string{}
	for _, c := range cases {
		p, ev := h.create(c.url)
		ids[p.ID] = c.reason
		h.publish(ev, nil)
	}
	reasons := map[string]bool{}
	for id, reason := range ids {
		p := h.waitStatus(id, productd.ImageStatusDone, productd.ImageStatusFailed)
		if p.ImageStatus != productd.ImageStatusFailed || !strings.HasPrefix(p.ImageError, "image 1 of 1 (") || !strings.Contains(p.ImageError, reason) {
			t.Errorf("product %d: %s %q, want failed saying %q", id, p.ImageStatus, p.ImageError, reason)
		}
		// image_error is public: where a URL led inside the network is not.
		// (The URL is the owner's own input.)
		if _, why, _ := strings.Cut(p.ImageError, "): "); strings.Contains(why, "127.0.0.1") || strings.Contains(why, ":80") {
			t.Errorf("product %d: image_error %q names an internal address", id, p.ImageError)
		}
		reasons[p.ImageError] = true
	}
	for _, d := range amqptest.Collect(t, h.topo.ParkingQueue, len(cases)) {
		if r, _ := d.Headers[HeaderReason].(string); !reasons[r] {
			t.Errorf("parked message with reason %q, which no product shows", r)
		}
	}
	if n := w.compressor.Decodes(); n != 1 {
		t.Errorf("%d images reached a decoder, want only the corrupt one", n)
	}
}

// A URL that never answers fails once its retries run out, each attempt
// bounded by the fetch timeout.
func TestImageNeverAnswers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := testConfig()
	cfg.FetchTimeout = 300 * time.Millisecond
	h.start(cfg, nil, hooks{})
	p, ev := h.create(h.images.URL + "/hang.jpg")
	h.publish(ev, nil)
	got := h.waitStatus(p.ID, productd.ImageStatusFailed, productd.ImageStatusDone)
	if want := "the server did not answer within 300ms (gave up after 4 attempts)"; !strings.HasSuffix(got.ImageError, want) {
		t.Fatalf("%s %q, want failed saying %q", got.ImageStatus, got.ImageError, want)
	}
	if r, _ := amqptest.Collect(t, h.topo.ParkingQueue, 1)[0].Headers[HeaderReason].(string); r != got.ImageError {
		t.Fatalf("parked with reason %q", r)
	}
}

// MinIO away for a while: the message goes round the retry queues, each
// delay longer than the one before, and the product ends done once MinIO
// is back. Nothing is parked.
func TestStorageOutageIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 100*time.Millisecond, 200*time.Millisecond, 400*time.Millisecond, 800*time.Millisecond, 5*time.Second)
	proxy := s3test.NewProxy(t)
	cfg := h.storeCfg
	cfg.Endpoint = proxy.Addr()
	cfg.MaxRetries = 1
	viaProxy, err := storage.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	retries := make(chan string, 10)
	h.start(testConfig(), viaProxy, hooks{settled: func(ev productd.Event, outcome string) {
		if strings.Contains(outcome, ".retry.") {
			retries <- outcome
		}
	}})

	proxy.Cut()
	p, ev := h.create(h.url("photo.jpg"))
	h.publish(ev, nil)
	var queues []string
	for len(queues) < 3 {
		select {
		case q := <-retries:
			queues = append(queues, q)
		case <-time.After(waitFor):
			t.Fatalf("retries so far %v, want 3", queues)
		}
	}
	proxy.Restore()
	want := []string{h.topo.RetryQueue(100 * time.Millisecond), h.topo.RetryQueue(200 * time.Millisecond), h.topo.RetryQueue(400 * time.Millisecond)}
	if !slices.Equal(queues, want) {
		t.Fatalf("retried through %v, want growing delays %v", queues, want)
	}
	if got := h.waitStatus(p.ID, productd.ImageStatusDone, productd.ImageStatusFailed); got.ImageStatus != productd.ImageStatusDone {
		t.Fatalf("after the outage: %s %q", got.ImageStatus, got.ImageError)
	}
	if n := amqptest.Depth(t, h.topo.ParkingQueue); n != 0 {
		t.Fatalf("%d messages parked", n)
	}
}

// The same message twice: the same objects, one run and one result.
func TestDuplicateDelivery(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(testConfig(), nil, hooks{})
	p, ev := h.create(h.url("photo.jpg"), h.url("anim.gif"))
	h.publish(ev, nil)
	h.publish(ev, nil)
	h.waitOutcomes(ev.ID, 2)
	got := h.waitStatus(p.ID, productd.ImageStatusDone)
	if got.Version != p.Version+2 {
		t.Errorf("version %d after two deliveries, want %d: one run (processing), one result", got.Version, p.Version+2)
	}
	if keys := h.keys(p.ID); len(keys) != 2 {
		t.Errorf("objects %v, want 2", keys)
	}
}

// An older event after a newer one changes nothing.
func TestStaleEventChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(testConfig(), nil, hooks{})
	p, old := h.create(h.url("photo.jpg"))
	images := []string{h.url("anim.gif")}
	if _, err := h.products.UpdateProduct(context.Background(), p.ID, productd.ProductUpdate{Images: &images}); err != nil {
		t.Fatal(err)
	}
	newer := h.lastEvent(p.ID)
	h.publish(newer, nil)
	done := h.waitStatus(p.ID, productd.ImageStatusDone)

	h.publish(old, nil)
	if out := h.outcome(old.ID); out != "acked" {
		t.Fatalf("stale event %v", out)
	}
	got := h.waitStatus(p.ID, productd.ImageStatusDone)
	if got.Version != done.Version || !slices.Equal(got.CompressedImages, done.CompressedImages) {
		t.Fatalf("the stale event changed the product: %+v, was %+v", got, done)
	}
	if keys := h.keys(p.ID); len(keys) != 1 {
		t.Errorf("objects %v, want only the newer image's", keys)
	}
}

// A worker that dies after storing the images and before writing and
// acking leaves the message to the next worker, which completes the
// product with the same objects.
func TestKilledBetweenUploadAndAck(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var first *worker
	first = h.start(testConfig(), nil, hooks{stored: func(ev productd.Event) error {
		first.broker.Close() // the connection dies: the delivery goes back
		return errors.New("killed")
	}})
	p, ev := h.create(h.url("photo.jpg"), h.url("photo-exif6.jpg"))
	h.publish(ev, nil)
	h.waitOutcomes(ev.ID, 1)
	before := h.keys(p.ID)
	if len(before) != 2 {
		t.Fatalf("the first worker stored %v, want 2 objects", before)
	}
	if got, _ := h.products.FindProductByID(context.Background(), p.ID); got.ImageStatus != productd.ImageStatusProcessing {
		t.Fatalf("the first worker left %s, want processing", got.ImageStatus)
	}
	if n := h.unfinishedRuns(p.ID); n != 0 {
		t.Fatalf("the first worker's run, which failed, counts as unfinished (%d)", n)
	}

	h.start(testConfig(), nil, hooks{})
	got := h.waitStatus(p.ID, productd.ImageStatusDone, productd.ImageStatusFailed)
	if got.ImageStatus != productd.ImageStatusDone {
		t.Fatalf("after redelivery: %s %q", got.ImageStatus, got.ImageError)
	}
	if after := h.keys(p.ID); !slices.Equal(after, before) {
		t.Fatalf("objects %v after redelivery, %v before", after, before)
	}
}

// Deleting a product removes its compressed images and its uploaded
// original, and nothing of another product.
func TestDeleteRemovesObjects(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(testConfig(), nil, hooks{})
	ctx := context.Background()
	upload := h.upload("image/png", imagetest.Read(t, "alpha.png"))
	p, ev := h.createOwning([]productd.Upload{upload}, h.url("photo.jpg"))
	other, otherEv := h.create(h.url("photo.jpg"))
	h.publish(ev, nil)
	h.publish(otherEv, nil)
	h.waitStatus(p.ID, productd.ImageStatusDone)
	h.waitStatus(other.ID, productd.ImageStatusDone)

	if err := h.products.DeleteProduct(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	del := h.lastEvent(p.ID)
	h.publish(del, nil)
	if out := h.outcome(del.ID); out != "acked" {
		t.Fatalf("delete event %v", out)
	}
	if keys := h.keys(p.ID); len(keys) != 0 {
		t.Errorf("objects left after delete: %v", keys)
	}
	originals, err := h.store.List(ctx, storage.PrefixOriginals)
	if err != nil || len(originals) != 0 {
		t.Errorf("originals left after delete: %v %v", originals, err)
	}
	if keys := h.keys(other.ID); len(keys) != 1 {
		t.Errorf("the other product's objects: %v", keys)
	}
}

// Messages that are not events this worker reads are parked with the
// reason, not retried.
func TestUnreadableMessagesParked(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(testConfig(), nil, hooks{})
	h.publishRaw(string(productd.EventProductCreated), "garbage", []byte("not json"), nil)
	h.publishRaw(string(productd.EventProductCreated), "future", []byte(`{"schema_version":2,"event_id":"x","product_id":1}`), nil)
	parked := amqptest.Collect(t, h.topo.ParkingQueue, 2)
	reasons := map[string]string{}
	for _, d := range parked {
		reasons[d.MessageId], _ = d.Headers[HeaderReason].(string)
	}
	if !strings.Contains(reasons["garbage"], "not an event") || !strings.Contains(reasons["future"], "schema_version 2") {
		t.Fatalf("parked with reasons %q", reasons)
	}
}

// At shutdown an image in flight finishes within the drain time.
func TestShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := testConfig()
	cfg.DrainTimeout = 10 * time.Second
	w := h.start(cfg, nil, hooks{})
	p, ev := h.create(h.images.URL + "/slow.jpg")
	h.publish(ev, nil)
	h.waitProcessing(w)
	if err := w.stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if got := h.waitStatus(p.ID, productd.ImageStatusDone, productd.ImageStatusFailed); got.ImageStatus != productd.ImageStatusDone {
		t.Fatalf("%s %q", got.ImageStatus, got.ImageError)
	}
	if out := h.outcome(ev.ID); out != "acked" {
		t.Fatalf("outcome %v", out)
	}
}

// At shutdown an image that outlasts the drain time goes back to the queue
// for the next worker.
func TestShutdownReturnsInFlight(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := testConfig()
	cfg.DrainTimeout = 50 * time.Millisecond
	cfg.FetchTimeout = time.Minute
	w := h.start(cfg, nil, hooks{})
	p, ev := h.create(h.images.URL + "/hang.jpg")
	h.publish(ev, nil)
	h.waitProcessing(w)
	h.stopRequeued(w, p.ID, ev.ID)
	// The broker takes the returned message back asynchronously.
	h.waitDepth(h.topo.WorkQueue, 1)
}

// waitProcessing waits until w has taken an image slot.
func (h *harness) waitProcessing(w *worker) {
	h.t.Helper()
	h.waitUntil("the worker started on the image", func() bool { return len(w.slots) > 0 })
}

// stopRequeued stops w and checks that Run returned for its context's end,
// that the delivery of eventID went back to the queue, and that the product
// is still processing, its cut run recorded as ended.
func (h *harness) stopRequeued(w *worker, productID int64, eventID string) {
	h.t.Helper()
	if err := w.stop(); !errors.Is(err, context.Canceled) {
		h.t.Fatalf("Run returned %v", err)
	}
	if out := h.outcome(eventID); out != "requeued" {
		h.t.Fatalf("outcome %v", out)
	}
	if got, _ := h.products.FindProductByID(context.Background(), productID); got.ImageStatus != productd.ImageStatusProcessing {
		h.t.Fatalf("status %s", got.ImageStatus)
	}
	// The run the shutdown cut short is not one that never ended.
	if n := h.unfinishedRuns(productID); n != 0 {
		h.t.Fatalf("%d runs unfinished after the shutdown", n)
	}
}

// waitUntil polls cond until it holds, failing the test after waitFor.
func (h *harness) waitUntil(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("not so after %v: %s", waitFor, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
