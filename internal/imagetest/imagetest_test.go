package imagetest

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/productd/productd/internal/failtest"
)

// picture returns a w × h white picture with a red square in the corner
// at (x, y).
func picture(w, h int, red image.Point) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(red.X, red.Y, red.X+w/4, red.Y+w/4), image.NewUniform(color.RGBA{R: 255, A: 255}), image.Point{}, draw.Src)
	return img
}

func TestCheckUprightTellsWhatIsWrong(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		img  image.Image
		want string
	}{
		{"upright", picture(40, 60, image.Pt(30, 0)), ""},
		{"landscape", picture(60, 40, image.Pt(45, 0)), "not a portrait"},
		{"no red square", picture(40, 60, image.Pt(0, 45)), "not the red square"},
		{"red square at both top corners", picture(40, 60, image.Pt(0, 0)), "not the red square"},
	} {
		err := CheckUpright(tc.img)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// Red at the top left and the top right: a picture turned wrong whose
	// square reaches across.
	wide := image.NewRGBA(image.Rect(0, 0, 40, 60))
	draw.Draw(wide, wide.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(wide, image.Rect(0, 0, 40, 10), image.NewUniform(color.RGBA{R: 255, A: 255}), image.Point{}, draw.Src)
	if err := CheckUpright(wide); err == nil || !strings.Contains(err.Error(), "top left") {
		t.Errorf("red across the top: %v, want it called not turned upright", err)
	}
}

func TestPSNR(t *testing.T) {
	t.Parallel()
	a := picture(40, 60, image.Pt(30, 0))
	if got := PSNR(a, picture(60, 40, image.Pt(0, 0))); got != 0 {
		t.Errorf("pictures of different sizes: %.1f dB, want 0", got)
	}
	if got := PSNR(a, a); got < 40 {
		t.Errorf("a picture against itself: %.1f dB, want above 40", got)
	}
	if got := PSNR(a, picture(40, 60, image.Pt(0, 0))); got >= 40 {
		t.Errorf("the square moved: %.1f dB, want a visible difference", got)
	}
}

func TestRepeatScanRefusesWhatItCannotRepeat(t *testing.T) {
	t.Parallel()
	progressive := Read(t, "photo-progressive.jpg")
	for name, tc := range map[string]struct {
		data  []byte
		index int
		want  string
	}{
		"not a JPEG":       {[]byte("GIF89a"), 0, "not a JPEG"},
		"no such scan":     {progressive, 1000, "no scan 1000"},
		"negative scan":    {progressive, -1, "no scan -1"},
		"garbage":          {[]byte{0xFF, 0xD8, 0x00, 0x00}, 0, "no marker at offset 2"},
		"cut short":        {progressive[:len(progressive)/2], 0, "no end of image"},
		"no segment after": {[]byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00}, 0, "no end of image"},
	} {
		if _, err := RepeatScan(tc.data, tc.index, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestMissingFixturesSayWhereTheyComeFrom(t *testing.T) {
	t.Parallel()
	if msg := failtest.Failures(t, func(tb testing.TB) { Read(tb, "no-such-fixture.jpg") }); !strings.Contains(msg, "genfixtures.go") {
		t.Errorf("a missing fixture failed with %q, want the program that makes them", msg)
	}
	if msg := failtest.Failures(t, func(tb testing.TB) { GoTestImages(tb, "*.no-such-kind") }); !strings.Contains(msg, "no *.no-such-kind in the Go tree's image/testdata") {
		t.Errorf("a pattern matching nothing failed with %q", msg)
	}
	if paths := GoTestImages(t, "*.jpeg"); len(paths) == 0 {
		t.Error("no JPEG in the Go tree's image/testdata")
	}
}

// vipsthumbnail makes a thumbnail of each of the n copies of a photo.
func TestVipsThumbnailMakesEveryThumbnail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	VipsThumbnail(t, dir, filepath.Join(Dir(), "photo.jpg"), 2)
	for _, name := range []string{"in0-out.jpg", "in1-out.jpg"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	text := filepath.Join(t.TempDir(), "text.jpg")
	if err := os.WriteFile(text, []byte("this is not a photo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg := failtest.Failures(t, func(tb testing.TB) { VipsThumbnail(tb, t.TempDir(), text, 1) }); !strings.Contains(msg, "vipsthumbnail: ") {
		t.Errorf("a thumbnail of a text file failed with %q, want vipsthumbnail's words", msg)
	}
}
