package jpegscale

import (
	"bytes"
	"image/jpeg"
	"testing"
)

// FuzzDecode checks on arbitrary input that the decoder never panics, and at
// full scale fails exactly when the standard library's fails. Run it with
// go test -fuzz FuzzDecode ./imageworker/internal/jpegscale.
func FuzzDecode(f *testing.F) {
	for _, name := range fixtures {
		data := readFixture(f, name)
		f.Add(data[:min(len(data), 4096)], 3)
	}
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width*cfg.Height > 1<<20 {
			return // the compressor refuses these before decoding
		}
		_, wantErr := jpeg.Decode(bytes.NewReader(data))
		_, err = Decode(bytes.NewReader(data), 8)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("error %v, image/jpeg's %v", err, wantErr)
		}
		if n = 1 + (n&7+8)%8; n < 8 {
			Decode(bytes.NewReader(data), n) //nolint:errcheck // only panics matter
		}
	})
}
