package compress_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/productd/productd"
	"github.com/productd/productd/imageworker/internal/compress"
	"github.com/productd/productd/internal/imagetest"
)

// scanBomb is a 16-megapixel progressive JPEG whose second scan, all
// end-of-band runs, is repeated n times: a small file that costs a decoder
// one pass over 262,144 blocks per copy.
func scanBomb(t *testing.T, n int) []byte {
	t.Helper()
	b, err := imagetest.RepeatScan(fixture(t, "flat-progressive.jpg"), 1, n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitIdle waits until no decode of c runs any more: one left behind by
// Compress must stop by itself, not run for its whole cost.
func waitIdle(t *testing.T, c *compress.Compressor) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.Decoding() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a decode left behind is still running")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Thousands of scans are refused from the file's structure, before any
// decoder sees them. (Before the budget, image/jpeg decoded such a file
// for about a minute of CPU.)
func TestScanBombRefusedBeforeDecoding(t *testing.T) {
	t.Parallel()
	bomb := scanBomb(t, 3000)
	if len(bomb) > 200<<10 {
		t.Fatalf("the bomb is %d KB, not small", len(bomb)>>10)
	}
	c := compress.New(compress.Config{})
	_, err := c.Compress(context.Background(), bomb)
	if productd.ErrorCode(err) != productd.ETOOLARGE || productd.ErrorMessage(err) != "the image is too costly to decode: the JPEG has more than 100 scans" {
		t.Fatalf("got %v", err)
	}
	if c.Decodes() != 0 {
		t.Fatal("a decoder saw the bomb")
	}
	// Ordinary files pass: one scan, or libjpeg's progressive ten.
	for _, name := range []string{"photo.jpg", "photo-progressive.jpg", "flat-progressive.jpg"} {
		if _, err := compress.New(compress.Config{MaxScans: 10}).Compress(context.Background(), fixture(t, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A file within the scan limit that still costs too much runs into the
// time budget: a permanent failure that says so, and the decode stops.
func TestTimeBudget(t *testing.T) {
	t.Parallel()
	c := compress.New(compress.Config{MaxScans: 1 << 20, Timeout: 100 * time.Millisecond})
	_, err := c.Compress(context.Background(), scanBomb(t, 3000))
	if productd.ErrorCode(err) != productd.ETOOLARGE || productd.ErrorMessage(err) != "the image is too costly to decode: it took more than 100ms" {
		t.Fatalf("got %v", err)
	}
	waitIdle(t, c)
}

// A caller that gives up (shutdown, the message's timeout) gets its own
// error back, not a verdict on the image, and the decode stops.
func TestCancelStopsDecoding(t *testing.T) {
	t.Parallel()
	c := compress.New(compress.Config{MaxScans: 1 << 20})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Compress(ctx, scanBomb(t, 3000)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
	waitIdle(t, c)

	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	c = compress.New(compress.Config{})
	if _, err := c.Compress(done, fixture(t, "photo.jpg")); !errors.Is(err, context.Canceled) || c.Decodes() != 0 {
		t.Fatalf("a cancelled context: %v after %d decodes", err, c.Decodes())
	}
}

// A decoder that panics fails the image, not the process: the decode runs
// on a goroutine of its own, out of reach of the worker's recover.
func TestDecoderPanicFailsTheImage(t *testing.T) {
	t.Parallel()
	c := compress.New(compress.Config{})
	compress.PanicBeforeDecode(c, "decoder bug")
	_, err := c.Compress(context.Background(), fixture(t, "photo.jpg"))
	if productd.ErrorCode(err) != productd.EUNPROCESSABLE || !strings.Contains(productd.ErrorMessage(err), "decoding failed unexpectedly (decoder bug)") {
		t.Fatalf("got %v", err)
	}
}
