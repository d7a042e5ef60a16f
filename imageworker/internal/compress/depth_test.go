package compress_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/productd/productd/imageworker/internal/compress"
)

// A 16-bit greyscale PNG, as scanners write, is brought to 8 bits: it
// compresses, fitted, with its tones.
func TestSixteenBitGreyIsCompressed(t *testing.T) {
	t.Parallel()
	src := image.NewGray16(image.Rect(0, 0, 400, 200))
	for y := range 200 {
		for x := range 400 {
			v := uint16(0x2000)
			if x >= 200 {
				v = 0xD000
			}
			src.SetGray16(x, y, color.Gray16{Y: v})
		}
	}
	var data bytes.Buffer
	if err := png.Encode(&data, src); err != nil {
		t.Fatal(err)
	}
	r, err := compress.New(compress.Config{MaxSide: 100}).Compress(context.Background(), data.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if r.Source != compress.PNG || r.Width != 100 || r.Height != 50 {
		t.Fatalf("got %s → %s %dx%d, want a PNG fitted to 100x50", r.Source, r.Format, r.Width, r.Height)
	}
	img := decodeResult(t, r)
	for x, want := range map[int]uint8{10: 0x20, 90: 0xD0} {
		if got := color.GrayModel.Convert(img.At(x, 25)).(color.Gray).Y; got < want-4 || got > want+4 {
			t.Errorf("at x=%d: grey %#x, want about %#x", x, got, want)
		}
	}
}
