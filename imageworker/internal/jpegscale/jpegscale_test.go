package jpegscale

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/productd/productd/internal/imagetest"
)

var fixtures = []string{"photo.jpg", "photo-444.jpg", "photo-progressive.jpg", "gray.jpg", "photo-exif6.jpg"}

var readFixture = imagetest.Read

// At scale 1 the decoder must give exactly what the standard library gives:
// the fork changed only how blocks are written.
func TestFullScaleMatchesStandardLibrary(t *testing.T) {
	t.Parallel()
	for _, name := range fixtures {
		data := readFixture(t, name)
		want, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(bytes.NewReader(data), 8)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Bounds() != want.Bounds() {
			t.Fatalf("%s: bounds %v, want %v", name, got.Bounds(), want.Bounds())
		}
		if !samePixels(got, want) {
			t.Errorf("%s: pixels differ from image/jpeg's", name)
		}
	}
}

// The standard library's own test images cover what the fixtures do not:
// every chroma subsampling, progressive scans with separate DC progression,
// restart intervals, CMYK, RGB, and a truncated file.
func TestStandardLibraryTestImages(t *testing.T) {
	t.Parallel()
	paths := imagetest.GoTestImages(t, "*.jpeg")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := jpeg.Decode(bytes.NewReader(data))
		got, gotErr := Decode(bytes.NewReader(data), 8)
		if (wantErr == nil) != (gotErr == nil) {
			t.Errorf("%s: error %v, image/jpeg's %v", filepath.Base(p), gotErr, wantErr)
			continue
		}
		if wantErr != nil {
			continue
		}
		if !sameColors(got, want) {
			t.Errorf("%s: pixels differ from image/jpeg's", filepath.Base(p))
		}
		for n := 1; n < 8; n++ {
			img, err := Decode(bytes.NewReader(data), n)
			if err != nil {
				t.Errorf("%s at %d/8: %v", filepath.Base(p), n, err)
				continue
			}
			switch img.(type) {
			case *image.CMYK, *image.RGBA:
				continue // decoded at full size
			}
			if b := want.Bounds(); img.Bounds().Dx() != (b.Dx()*n+7)/8 {
				t.Errorf("%s at %d/8: %v", filepath.Base(p), n, img.Bounds())
			}
		}
	}
}

// Damaged files must fail as the standard library's decoder fails, or
// decode as it does, and never panic: the input is untrusted.
func TestDamagedFilesBehaveLikeStandardLibrary(t *testing.T) {
	t.Parallel()
	// The Go tree's small images cover every layout; one fixture adds a
	// photograph-sized progressive file.
	files := [][]byte{readFixture(t, "photo-progressive.jpg")}
	for _, p := range imagetest.GoTestImages(t, "video-001.*jpeg") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	r := rand.New(rand.NewPCG(5, 8))
	for _, data := range files {
		for i := 0; i < 8; i++ {
			bad := bytes.Clone(data)
			if i%2 == 0 {
				bad = bad[:r.IntN(len(bad))] // truncated
			} else {
				for range 3 { // a few flipped bytes past the headers
					bad[len(bad)/4+r.IntN(len(bad)*3/4)] ^= byte(1 + r.IntN(255))
				}
			}
			_, wantErr := jpeg.Decode(bytes.NewReader(bad))
			for _, n := range []int{8, 3} {
				_, err := Decode(bytes.NewReader(bad), n)
				if n == 8 && (err == nil) != (wantErr == nil) {
					t.Errorf("damaged file %d: error %v, image/jpeg's %v", i, err, wantErr)
				}
			}
		}
	}
}

// A scaled decode must look like the full decode shrunk by averaging the
// area under each new pixel: the same picture, with only the detail the
// smaller size cannot hold gone.
func TestScaledLooksLikeAreaAverage(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"photo.jpg", "photo-progressive.jpg", "gray.jpg"} {
		data := readFixture(t, name)
		full, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; n < 8; n++ {
			got, err := Decode(bytes.NewReader(data), n)
			if err != nil {
				t.Fatalf("%s at %d/8: %v", name, n, err)
			}
			fb := full.Bounds()
			wantW, wantH := (fb.Dx()*n+7)/8, (fb.Dy()*n+7)/8
			if got.Bounds() != image.Rect(0, 0, wantW, wantH) {
				t.Fatalf("%s at %d/8: bounds %v, want %dx%d", name, n, got.Bounds(), wantW, wantH)
			}
			psnr := areaPSNR(full, got, n)
			t.Logf("%s at %d/8: PSNR %.1f dB against an area average", name, n, psnr)
			// Dropping the frequencies above the new size's Nyquist limit
			// differs from an area average by far less than JPEG's own
			// error.
			if psnr < 35 {
				t.Errorf("%s at %d/8: PSNR %.1f dB against an area average, want ≥ 35", name, n, psnr)
			}
		}
	}
}

func TestBadScale(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 9} {
		if _, err := Decode(bytes.NewReader(readFixture(t, "photo.jpg")), n); err == nil {
			t.Fatalf("scale %d/8 accepted", n)
		}
	}
}

func TestCorrupt(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 8; n++ {
		if _, err := Decode(bytes.NewReader(readFixture(t, "corrupt.jpg")), n); err == nil {
			t.Fatalf("corrupt JPEG decoded at %d/8", n)
		}
	}
}

func TestClamp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   int32
		want uint8
	}{{-1000, 0}, {-129, 0}, {-128, 0}, {-1, 127}, {0, 128}, {127, 255}, {128, 255}, {5000, 255}} {
		if got := clamp(tc.in); got != tc.want {
			t.Errorf("clamp(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// A flat block's fast path must give what the full transform gives.
func TestDCPixelMatchesIDCT(t *testing.T) {
	t.Parallel()
	for dc := int32(-1100); dc <= 1100; dc++ {
		var b block
		b[0] = dc
		idct(&b)
		if got, want := dcPixel(dc), clamp(b[0]); got != want {
			t.Fatalf("dcPixel(%d) = %d, idct gives %d", dc, got, want)
		}
	}
}

// sameColors compares any two images pixel by pixel.
func sameColors(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}

func samePixels(a, b image.Image) bool {
	switch a := a.(type) {
	case *image.YCbCr:
		b, ok := b.(*image.YCbCr)
		return ok && a.SubsampleRatio == b.SubsampleRatio && bytes.Equal(a.Y, b.Y) && bytes.Equal(a.Cb, b.Cb) && bytes.Equal(a.Cr, b.Cr)
	case *image.Gray:
		b, ok := b.(*image.Gray)
		return ok && bytes.Equal(a.Pix, b.Pix)
	}
	return false
}

// areaPSNR compares small with full shrunk to n/8 by averaging the area
// under each new pixel, on luma, in decibels. Blocks map to n pixels, so
// whole blocks are compared.
func areaPSNR(full, small image.Image, n int) float64 {
	luma := func(img image.Image, x, y int) float64 {
		switch m := img.(type) {
		case *image.YCbCr:
			return float64(m.Y[m.YOffset(x, y)])
		case *image.Gray:
			return float64(m.Pix[m.PixOffset(x, y)])
		}
		panic("unexpected image type")
	}
	// cover returns how much of source pixel s lies under output pixel o.
	cover := func(o, s int) float64 {
		lo, hi := float64(o)*8/float64(n), float64(o+1)*8/float64(n)
		return math.Max(0, math.Min(hi, float64(s+1))-math.Max(lo, float64(s)))
	}
	fb := full.Bounds()
	var sum float64
	var count int
	for y := 0; y < fb.Dy()/8*n; y++ {
		for x := 0; x < fb.Dx()/8*n; x++ {
			var acc, area float64
			for sy := y * 8 / n; sy <= (y+1)*8/n && sy < fb.Dy(); sy++ {
				for sx := x * 8 / n; sx <= (x+1)*8/n && sx < fb.Dx(); sx++ {
					a := cover(x, sx) * cover(y, sy)
					acc += a * luma(full, sx, sy)
					area += a
				}
			}
			d := acc/area - luma(small, x, y)
			sum += d * d
			count++
		}
	}
	return 10 * math.Log10(255*255/(sum/float64(count)))
}
