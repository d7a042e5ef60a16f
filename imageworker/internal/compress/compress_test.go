package compress_test

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/productd/productd"
	"github.com/productd/productd/imageworker/internal/compress"
	"github.com/productd/productd/internal/imagetest"
)

var fixture = imagetest.Read

// decodeResult decodes a compressed image and checks it is what Result says.
func decodeResult(t *testing.T, r *compress.Result) image.Image {
	t.Helper()
	var img image.Image
	var err error
	switch r.Format {
	case compress.JPEG:
		img, err = jpeg.Decode(bytes.NewReader(r.Data))
	case compress.PNG:
		img, err = png.Decode(bytes.NewReader(r.Data))
	default:
		t.Fatalf("result format %q", r.Format)
	}
	if err != nil {
		t.Fatalf("the result does not decode as %s: %v", r.Format, err)
	}
	if b := img.Bounds(); b.Dx() != r.Width || b.Dy() != r.Height {
		t.Fatalf("the result is %dx%d, Result says %dx%d", b.Dx(), b.Dy(), r.Width, r.Height)
	}
	return img
}

func TestCompressAcceptedFormats(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file          string
		source, out   compress.Format
		width, height int
	}{
		{"photo.jpg", compress.JPEG, compress.JPEG, 256, 171},
		{"photo-progressive.jpg", compress.JPEG, compress.JPEG, 256, 171},
		{"photo-444.jpg", compress.JPEG, compress.JPEG, 256, 171},
		{"gray.jpg", compress.JPEG, compress.JPEG, 256, 171},
		{"photo.webp", compress.WebP, compress.JPEG, 256, 171},
		{"alpha.png", compress.PNG, compress.PNG, 256, 192},
		{"alpha.webp", compress.WebP, compress.PNG, 256, 192},
		{"anim.gif", compress.GIF, compress.JPEG, 256, 171},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			data := fixture(t, tc.file)
			r, err := compress.New(compress.Config{MaxSide: 256}).Compress(context.Background(), data)
			if err != nil {
				t.Fatal(err)
			}
			if r.Source != tc.source || r.Format != tc.out || r.Width != tc.width || r.Height != tc.height {
				t.Fatalf("got %s → %s %dx%d, want %s → %s %dx%d", r.Source, r.Format, r.Width, r.Height,
					tc.source, tc.out, tc.width, tc.height)
			}
			decodeResult(t, r)
			if r.Format == compress.JPEG && len(r.Data) >= len(data) {
				t.Errorf("the result (%d bytes) is not smaller than the original (%d)", len(r.Data), len(data))
			}
		})
	}
}

func TestTransparencyIsKept(t *testing.T) {
	t.Parallel()
	r, err := compress.New(compress.Config{}).Compress(context.Background(), fixture(t, "alpha.png"))
	if err != nil {
		t.Fatal(err)
	}
	img := decodeResult(t, r)
	if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
		t.Errorf("corner alpha %d, want transparent", a)
	}
	if _, _, _, a := img.At(200, 150).RGBA(); a != 0xffff {
		t.Errorf("centre alpha %d, want opaque", a)
	}
}

func TestNeverUpscales(t *testing.T) {
	t.Parallel()
	r, err := compress.New(compress.Config{MaxSide: 4096}).Compress(context.Background(), fixture(t, "photo.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Width != 640 || r.Height != 427 {
		t.Fatalf("got %dx%d, want the original 640x427", r.Width, r.Height)
	}
}

// The fixture is stored sideways with a red square in its stored top-left
// corner and EXIF orientation 6: upright it is a portrait with the square at
// the top right.
func TestEXIFOrientationIsApplied(t *testing.T) {
	t.Parallel()
	for _, side := range []int{1024, 200} {
		r, err := compress.New(compress.Config{MaxSide: side}).Compress(context.Background(), fixture(t, "photo-exif6.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		if err := imagetest.CheckUpright(decodeResult(t, r)); err != nil {
			t.Errorf("box %d: %v", side, err)
		}
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file, code, reason string
	}{
		{"not-an-image.jpg", productd.EUNSUPPORTED, "not an image but text/plain"},
		{"corrupt.jpg", productd.EUNPROCESSABLE, "corrupt or truncated"},
		{"bomb.jpg", productd.ETOOLARGE, "20000x20000 pixels (400 megapixels); the limit is 50 megapixels"},
		{"bomb.png", productd.ETOOLARGE, "20000x20000 pixels"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			c := compress.New(compress.Config{})
			_, err := c.Compress(context.Background(), fixture(t, tc.file))
			if productd.ErrorCode(err) != tc.code || !strings.Contains(productd.ErrorMessage(err), tc.reason) {
				t.Fatalf("got %v, want %s saying %q", err, tc.code, tc.reason)
			}
			if tc.code != productd.EUNPROCESSABLE && c.Decodes() != 0 {
				t.Fatalf("a decoder ran %d times for a file refused from its header", c.Decodes())
			}
		})
	}
	if _, err := compress.New(compress.Config{}).Compress(context.Background(), nil); productd.ErrorCode(err) != productd.EUNSUPPORTED {
		t.Fatalf("empty file: %v, want EUNSUPPORTED", err)
	}
	// A header that claims no pixels at all.
	bad := fixture(t, "bomb.png")
	copy(bad[16:24], make([]byte, 8))
	if _, err := compress.New(compress.Config{}).Compress(context.Background(), bad); productd.ErrorCode(err) != productd.EUNPROCESSABLE {
		t.Fatalf("0x0 PNG: %v, want EUNPROCESSABLE", err)
	}
}

// The standard library's CMYK and RGB JPEGs take the generic path.
func TestUnusualJPEGs(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"video-001.cmyk.jpeg", "video-001.rgb.jpeg"} {
		data, err := os.ReadFile(imagetest.GoTestImages(t, name)[0])
		if err != nil {
			t.Fatal(err)
		}
		r, err := compress.New(compress.Config{MaxSide: 100}).Compress(context.Background(), data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Width != 100 || r.Format != compress.JPEG {
			t.Fatalf("%s: %s %dx%d", name, r.Format, r.Width, r.Height)
		}
		decodeResult(t, r)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	c := compress.New(compress.Config{MaxSide: 300})
	data := fixture(t, "photo.jpg")
	want, err := c.Compress(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 3 {
				got, err := c.Compress(context.Background(), data)
				if err != nil || !bytes.Equal(got.Data, want.Data) {
					t.Errorf("concurrent compress differs: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if got := c.Decodes(); got != 13 {
		t.Fatalf("Decodes() = %d, want 13", got)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	want := compress.Config{
		MaxSide:   compress.DefaultMaxSide,
		Quality:   compress.DefaultQuality,
		MaxPixels: compress.DefaultMaxPixels,
		MaxScans:  compress.DefaultMaxScans,
		Timeout:   compress.DefaultTimeout,
	}
	if diff := cmp.Diff(want, compress.New(compress.Config{}).Config()); diff != "" {
		t.Fatalf("defaults (-want +got):\n%s", diff)
	}
	if compress.PNG.ContentType() != "image/png" || compress.JPEG.Ext() != "jpg" || compress.WebP.Ext() != "webp" {
		t.Fatal("format names")
	}
}

func TestNewRefusesWhatCannotWork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  compress.Config
		want string
	}{
		{compress.Config{Quality: 101}, "Config.Quality"},
		{compress.Config{MaxPixels: -1}, "Config.MaxPixels"},
		{compress.Config{Timeout: -time.Second}, "Config.Timeout"},
	} {
		func() {
			defer func() {
				err, _ := recover().(error)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("New(%+v) panicked with %v, want an error naming %s", tc.cfg, err, tc.want)
				}
			}()
			compress.New(tc.cfg)
		}()
	}
}

// libjpeg-turbo refuses a progressive JPEG that repeats a first scan
// ("Inconsistent progression sequence"); image/jpeg decodes it, and so the
// compressor does, to the same picture as the file without the repeat.
func TestProgressionLibjpegRefuses(t *testing.T) {
	t.Parallel()
	orig := fixture(t, "photo-progressive.jpg")
	repeated, err := imagetest.RepeatScan(orig, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	// The fallback's output is what is tested, not its speed: a budget no
	// loaded machine reaches (the race detector slows image/jpeg tenfold).
	c := compress.New(compress.Config{MaxSide: 256, Timeout: time.Minute})
	if err := compress.DecodeVips(repeated, 256); err == nil || !strings.Contains(err.Error(), "Inconsistent progression") {
		t.Fatalf("libvips read the repeated scans (%v); the test no longer shows the fallback", err)
	}
	got, err := c.Compress(context.Background(), repeated)
	if err != nil {
		t.Fatal(err)
	}
	want, err := c.Compress(context.Background(), orig)
	if err != nil {
		t.Fatal(err)
	}
	if got.Width != want.Width || got.Height != want.Height || got.Format != compress.JPEG {
		t.Fatalf("repeated scans: %s %dx%d, the original %s %dx%d", got.Format, got.Width, got.Height, want.Format, want.Width, want.Height)
	}
	if psnr := imagetest.PSNR(decodeResult(t, got), decodeResult(t, want)); psnr < 35 {
		t.Fatalf("the fallback's picture is %.1f dB from libvips' one, want ≥ 35", psnr)
	}
}
