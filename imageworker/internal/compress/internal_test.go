package compress

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"testing"

	"github.com/disintegration/imaging"

	"github.com/productd/productd/internal/imagetest"
)

var readFixture = imagetest.Read

// The planar path must turn pictures exactly as imaging's transforms do.
func TestTurnMatchesImaging(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	src := image.NewGray(image.Rect(0, 0, 7, 4))
	for i := range src.Pix {
		src.Pix[i] = byte(r.IntN(256))
	}
	for o := orientation(1); o <= 8; o++ {
		got := fitGray(src, 100, o)
		want := imaging.Grayscale(o.apply(src))
		if got.Bounds().Size() != want.Bounds().Size() {
			t.Fatalf("orientation %d: size %v, imaging's %v", o, got.Bounds().Size(), want.Bounds().Size())
		}
		for y := range got.Rect.Dy() {
			for x := range got.Rect.Dx() {
				if got.GrayAt(x, y).Y != want.NRGBAAt(x, y).R {
					t.Fatalf("orientation %d: pixel (%d,%d) differs from imaging's", o, x, y)
				}
			}
		}
	}
}

func TestJPEGOrientation(t *testing.T) {
	t.Parallel()
	if o := jpegOrientation(readFixture(t, "photo-exif6.jpg")); o != 6 {
		t.Errorf("photo-exif6.jpg: orientation %d, want 6", o)
	}
	if o := jpegOrientation(readFixture(t, "photo.jpg")); o != 1 {
		t.Errorf("photo.jpg: orientation %d, want 1", o)
	}
	// A little-endian EXIF block with another tag before Orientation 8.
	tiff := []byte("II\x2a\x00\x08\x00\x00\x00")
	tiff = binary.LittleEndian.AppendUint16(tiff, 2)
	tiff = append(tiff, 0x0f, 0x01, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0) // Make, ASCII
	tiff = append(tiff, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 8, 0, 0, 0) // Orientation 8
	if o := jpegOrientation(app1(tiff)); o != 8 {
		t.Errorf("little-endian EXIF: orientation %d, want 8", o)
	}
	for name, data := range map[string][]byte{
		"not a JPEG":          []byte("GIF89a"),
		"truncated segment":   {0xFF, 0xD8, 0xFF, 0xE1, 0x10, 0x00, 'E'},
		"bad byte order":      app1([]byte("XX\x2a\x00\x08\x00\x00\x00\x00\x00")),
		"IFD past the end":    app1([]byte("MM\x00\x2a\x00\x00\x10\x00")),
		"orientation 9":       app1(append([]byte("MM\x00\x2a\x00\x00\x00\x08\x00\x01"), 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 9, 0, 0)),
		"entries past end":    app1([]byte("MM\x00\x2a\x00\x00\x00\x08\x00\x05")),
		"no marker":           {0xFF, 0xD8, 0x00},
		"scan before EXIF":    {0xFF, 0xD8, 0xFF, 0xDA, 0, 2},
		"segment length zero": {0xFF, 0xD8, 0xFF, 0xE0, 0, 0},
	} {
		if o := jpegOrientation(data); o != 1 {
			t.Errorf("%s: orientation %d, want 1", name, o)
		}
	}
}

// app1 wraps a TIFF structure into a JPEG start with an EXIF segment.
func app1(tiff []byte) []byte {
	payload := append([]byte("Exif\x00\x00"), tiff...)
	out := []byte{0xFF, 0xD8, 0xFF, 0xE1}
	out = binary.BigEndian.AppendUint16(out, uint16(len(payload)+2))
	return append(out, payload...)
}

func TestTapsKeepFlatAreasFlat(t *testing.T) {
	t.Parallel()
	for _, c := range [][2]int{{1024, 1080}, {683, 1152}, {3, 5}, {1, 7}, {100, 100}, {5, 1000}} {
		tp := makeTaps(c[0], c[1])
		for i := range c[0] {
			var sum int32
			for _, w := range tp.w[i*tp.n : (i+1)*tp.n] {
				sum += w
			}
			if sum != 1<<weightBits || tp.start[i] < 0 || tp.start[i]+tp.n > c[1] {
				t.Fatalf("%d→%d, output %d: weights sum to %d, window [%d,%d)", c[1], c[0], i, sum, tp.start[i], tp.start[i]+tp.n)
			}
		}
	}
	src := newPlane(37, 23)
	for i := range src.pix {
		src.pix[i] = 200
	}
	dst := newPlane(11, 7)
	resizePlane(dst, src)
	for _, p := range dst.pix {
		if p != 200 {
			t.Fatalf("a flat plane resized to %d", p)
		}
	}
}

// The fast path (a scaled decode, planar Lanczos in integers) must give the
// picture the straightforward pipeline gives: a full decode fitted by
// imaging's Lanczos in floating point. The fixture's synthetic sensor grain,
// noise at the scale of single pixels, is where any two good filters differ
// most (vipsthumbnail is 37 to 51 dB from the reference on it), so the bound
// here catches a shifted, mis-coloured or aliased picture (below 25 dB), and
// BenchmarkQuality measures real photographs (44 to 49 dB).
func TestFastPathMatchesReference(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"photo.jpg", "photo-444.jpg", "photo-progressive.jpg"} {
		for _, side := range []int{300, 160, 75} {
			data := readFixture(t, name)
			c := New(Config{MaxSide: side})
			f, _ := Sniff(data)
			hdr, err := decodeConfig(f, data)
			if err != nil {
				t.Fatal(err)
			}
			d, err := c.decode(context.Background(), f, data, hdr)
			if err != nil {
				t.Fatal(err)
			}
			got := c.fit(d)
			full, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			want := imaging.Resize(full, got.Bounds().Dx(), got.Bounds().Dy(), imaging.Lanczos)
			psnr := imagetest.PSNR(got, want)
			t.Logf("%s in %d px (decoded at 1/%d): PSNR %.1f dB", name, side, d.shrink, psnr)
			if psnr < 30 {
				t.Errorf("%s in %d px: PSNR %.1f dB against the reference, want ≥ 30", name, side, psnr)
			}
		}
	}
}

func TestJPEGScans(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]int{"photo.jpg": 1, "photo-progressive.jpg": 10, "flat-progressive.jpg": 6, "corrupt.jpg": 1} {
		if got := jpegScans(readFixture(t, name), 100); got != want {
			t.Errorf("%s: %d scans, want %d", name, got, want)
		}
	}
	flat := readFixture(t, "flat-progressive.jpg")
	bomb, err := imagetest.RepeatScan(flat, 1, 500)
	if err != nil {
		t.Fatal(err)
	}
	if got := jpegScans(bomb, 100); got != 101 {
		t.Errorf("500 repeats: %d, want the walk to stop at 101", got)
	}
	// Restart markers, stuffed bytes and fill bytes inside or between
	// scans are not scans.
	sos := []byte{0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0}
	data := append([]byte{0xFF, 0xD8, 0xFF, 0xFF}, sos...)
	data = append(data, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD7)
	data = append(data, sos...)
	data = append(data, 0x78, 0xFF, 0xD9)
	if got := jpegScans(data, 100); got != 2 {
		t.Errorf("hand-made file: %d scans, want 2", got)
	}
	for name, data := range map[string][]byte{
		"no marker":            {0xFF, 0xD8, 0x00, 0x00, 0x00},
		"cut in a scan":        append([]byte{0xFF, 0xD8}, sos[:8]...),
		"cut after 0xFF":       append(append([]byte{0xFF, 0xD8}, sos...), 0xFF),
		"restart before frame": {0xFF, 0xD8, 0xFF, 0xD0, 0xFF, 0xD9},
	} {
		if got := jpegScans(data, 100); got > 1 {
			t.Errorf("%s: %d scans", name, got)
		}
	}
}
