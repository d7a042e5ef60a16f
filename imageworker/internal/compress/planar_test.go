package compress

import (
	"fmt"
	"image"
	"image/color"
	"testing"

	"github.com/disintegration/imaging"
)

// quadrants returns a 64 × 32 YCbCr picture of the given subsampling whose
// quadrants are four flat colours.
func quadrants(r image.YCbCrSubsampleRatio) *image.YCbCr {
	colours := [4]color.YCbCr{{Y: 40, Cb: 90, Cr: 200}, {Y: 200, Cb: 60, Cr: 120}, {Y: 120, Cb: 200, Cr: 70}, {Y: 80, Cb: 128, Cr: 128}}
	m := image.NewYCbCr(image.Rect(0, 0, 64, 32), r)
	for y := range 32 {
		for x := range 64 {
			c := colours[y/16*2+x/32]
			m.Y[m.YOffset(x, y)] = c.Y
			m.Cb[m.COffset(x, y)], m.Cr[m.COffset(x, y)] = c.Cb, c.Cr
		}
	}
	return m
}

// The planar path fits and turns a JPEG of any subsampling image/jpeg
// decodes as imaging's transforms and resize do: every quadrant keeps its
// colour and lands where the orientation puts it.
func TestFitYCbCrMatchesImagingForEverySubsampling(t *testing.T) {
	t.Parallel()
	for _, r := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		src := quadrants(r)
		for o := orientation(1); o <= 8; o++ {
			got := fitYCbCr(src, 32, o)
			if got.SubsampleRatio != image.YCbCrSubsampleRatio420 {
				t.Fatalf("%v, orientation %d: the result is %v, want 4:2:0", r, o, got.SubsampleRatio)
			}
			b := got.Bounds()
			want := imaging.Resize(o.apply(src), b.Dx(), b.Dy(), imaging.Lanczos)
			if want.Bounds().Size() != b.Size() || b.Dx()*b.Dy() != 32*16 {
				t.Fatalf("%v, orientation %d: %v, imaging's %v", r, o, b.Size(), want.Bounds().Size())
			}
			for _, at := range []image.Point{{b.Dx() / 4, b.Dy() / 4}, {3 * b.Dx() / 4, b.Dy() / 4}, {b.Dx() / 4, 3 * b.Dy() / 4}, {3 * b.Dx() / 4, 3 * b.Dy() / 4}} {
				if g, w := rgb(got.At(at.X, at.Y)), rgb(want.At(at.X, at.Y)); !near(g, w, 8) {
					t.Errorf("%v, orientation %d, at %v: %v, imaging's %v", r, o, at, g, w)
				}
			}
		}
	}
}

func rgb(c color.Color) [3]int {
	r, g, b, _ := c.RGBA()
	return [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
}

func near(a, b [3]int, tolerance int) bool {
	for i := range a {
		if d := a[i] - b[i]; d > tolerance || d < -tolerance {
			return false
		}
	}
	return true
}

func TestChromaSize(t *testing.T) {
	t.Parallel()
	for r, want := range map[image.YCbCrSubsampleRatio]string{
		image.YCbCrSubsampleRatio444: "7×5", image.YCbCrSubsampleRatio422: "4×5", image.YCbCrSubsampleRatio420: "4×3",
		image.YCbCrSubsampleRatio440: "7×3", image.YCbCrSubsampleRatio411: "2×5", image.YCbCrSubsampleRatio410: "2×3",
	} {
		// image.NewYCbCr sizes its chroma planes as the decoder does.
		m := image.NewYCbCr(image.Rect(0, 0, 7, 5), r)
		w, h := chromaSize(r, 7, 5)
		if got := fmt.Sprintf("%d×%d", w, h); got != want || w*h != len(m.Cb) {
			t.Errorf("%v: %s, want %s (%d chroma samples in image.YCbCr)", r, got, want, len(m.Cb))
		}
	}
}
