package compress

import (
	"bytes"
	"image/jpeg"

	"github.com/disintegration/imaging"
)

// FitPSNR fits the JPEG in data into a side × side box with the fast path
// and returns its PSNR against imaging's full-size Lanczos, for benchmarks.
func FitPSNR(data []byte, side int) float64 {
	c := New(Config{MaxSide: side})
	f, _ := Sniff(data)
	hdr, err := decodeConfig(f, data)
	if err != nil {
		panic(err)
	}
	img, o, err := c.decode(f, data, hdr)
	if err != nil {
		panic(err)
	}
	got := c.fit(img, o)
	full, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		panic(err)
	}
	return lumaPSNR(got, imaging.Resize(full, got.Bounds().Dx(), got.Bounds().Dy(), imaging.Lanczos))
}
