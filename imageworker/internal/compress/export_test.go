package compress

import (
	"bytes"
	"context"
	"image/jpeg"

	"github.com/disintegration/imaging"

	"github.com/productd/productd/internal/imagetest"
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
	d, err := c.decode(context.Background(), f, data, hdr)
	if err != nil {
		panic(err)
	}
	got := c.fit(d)
	full, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		panic(err)
	}
	return imagetest.PSNR(got, imaging.Resize(full, got.Bounds().Dx(), got.Bounds().Dy(), imaging.Lanczos))
}

// DecodeVips decodes the JPEG in data through libvips alone, for a box of
// side pixels, and returns its error.
func DecodeVips(data []byte, side int) error {
	_, err := decodeVips(JPEG, data, 1, side)
	return err
}

// PanicBeforeDecode makes every decode of c panic with v.
func PanicBeforeDecode(c *Compressor, v any) {
	c.beforeDecode = func() { panic(v) }
}
