package imagetest

import (
	"image"
	"image/color"
	"math"
)

// PSNR returns the peak signal-to-noise ratio of the luma of a against b's,
// in dB: 0 when their sizes differ, above 40 where no difference shows.
func PSNR(a, b image.Image) float64 {
	if a.Bounds().Size() != b.Bounds().Size() {
		return 0
	}
	var sum float64
	ab, bb := a.Bounds(), b.Bounds()
	for y := range ab.Dy() {
		for x := range ab.Dx() {
			ya := color.GrayModel.Convert(a.At(ab.Min.X+x, ab.Min.Y+y)).(color.Gray).Y
			yb := color.GrayModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y)).(color.Gray).Y
			d := float64(ya) - float64(yb)
			sum += d * d
		}
	}
	mse := sum / float64(ab.Dx()*ab.Dy())
	return 10 * math.Log10(255*255/max(mse, 1e-9))
}
