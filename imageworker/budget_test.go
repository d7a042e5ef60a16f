package imageworker

import (
	"strings"
	"testing"
	"time"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/imagetest"
)

// scanBomb is a 16-megapixel progressive JPEG of a few hundred kilobytes
// whose second scan is repeated n times: image/jpeg spends about a minute
// of CPU on n = 3000.
func scanBomb(t *testing.T, n int) []byte {
	t.Helper()
	b, err := imagetest.RepeatScan(imagetest.Read(t, "flat-progressive.jpg"), 1, n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Three costly files, then an ordinary photograph: each costly one fails
// for good with a reason saying it is too costly, parked at once and never
// retried, and the photograph is done. Before the budget the three held
// both slots for a minute each and went round the retry queues.
func TestCostlyImagesFailFast(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		cfg    func(*Config)
		reason string
	}{
		// Refused from the file's structure, before any decode.
		{"scan limit", func(*Config) {}, "the image is too costly to decode: the JPEG has more than 100 scans"},
		// Let through the scan limit, stopped by the time budget: ten times
		// the photograph's cost, so that a loaded machine does not fail it,
		// and short enough that a decode left behind notices soon.
		{"time budget", func(c *Config) { c.MaxScans, c.CompressTimeout = 1<<20, time.Second },
			"the image is too costly to decode: it took more than 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			cfg := testConfig()
			tc.cfg(&cfg)
			w := h.start(cfg, nil, hooks{})
			bomb := h.serve("bomb.jpg", scanBomb(t, 3000))
			var bombs []productd.Event
			for range 3 {
				_, ev := h.create(bomb)
				bombs = append(bombs, ev)
				h.publish(ev, nil)
			}
			photo, ev := h.create(h.url("photo.jpg"))
			h.publish(ev, nil)

			if got := h.waitStatus(photo.ID, productd.ImageStatusDone, productd.ImageStatusFailed); got.ImageStatus != productd.ImageStatusDone {
				t.Fatalf("the photograph: %s %q", got.ImageStatus, got.ImageError)
			}
			for _, ev := range bombs {
				got := h.waitStatus(ev.ProductID, productd.ImageStatusDone, productd.ImageStatusFailed)
				if got.ImageStatus != productd.ImageStatusFailed || !strings.HasSuffix(got.ImageError, "): "+tc.reason) {
					t.Errorf("product %d: %s %q, want failed saying %q", ev.ProductID, got.ImageStatus, got.ImageError, tc.reason)
				}
				if out := h.waitOutcomes(ev.ID, 1); len(out) != 1 || out[0] != "parked" {
					t.Errorf("product %d: outcomes %v, want parked at once", ev.ProductID, out)
				}
			}
			h.waitUntil("no decode runs", func() bool { return w.compressor.Decoding() == 0 })
		})
	}
}

// SIGTERM while a costly image is being decoded: Run returns once the
// drain time is up, without waiting for the decode, the message goes back
// to the queue, and the decode stops. Before, Run waited for the decode
// (about a minute and a half for this file).
func TestShutdownDuringCostlyImage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := testConfig()
	cfg.MaxScans, cfg.CompressTimeout, cfg.DrainTimeout = 1<<20, 10*time.Minute, 100*time.Millisecond
	w := h.start(cfg, nil, hooks{})
	p, ev := h.create(h.serve("bomb.jpg", scanBomb(t, 3000)))
	h.publish(ev, nil)
	h.waitUntil("the decode started", func() bool { return w.compressor.Decoding() > 0 })
	h.stopRequeued(w, p.ID, ev.ID)
	// The decode left behind stops too: it does not keep a core busy.
	h.waitUntil("no decode runs", func() bool { return w.compressor.Decoding() == 0 })
}
