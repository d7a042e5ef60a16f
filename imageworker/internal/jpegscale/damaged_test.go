package jpegscale

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/productd/productd/internal/imagetest"
)

// The headers steer all the decoding that follows them, and an uploaded
// file's headers are the attacker's to write. Cut short or with a byte
// flipped at any byte of its headers (a sample of those deep in its tables),
// each of the Go tree's test images below (one per header layout) must be
// refused exactly when image/jpeg refuses it, for the same reason, at full
// scale and at any smaller one, and decode to image/jpeg's pixels when
// image/jpeg decodes it, but for one deliberate difference (see
// divergence).
func TestDamagedHeadersBehaveLikeStandardLibrary(t *testing.T) {
	t.Parallel()
	// Flipping the low bit, the high bit or all bits turns lengths, counts,
	// table indexes, sampling factors and markers into values just off,
	// far off and invalid.
	masks := []byte{0x01, 0x80, 0xff}
	dir := filepath.Dir(imagetest.GoTestImages(t, "video-001.jpeg")[0])
	for _, name := range []string{
		"video-001.restart2.jpeg",     // JFIF, 4:2:0, restart interval
		"video-001.q50.410.jpeg",      // 4:1:0
		"video-001.221212.jpeg",       // sampling factors above 1 on every component
		"video-001.rgb.jpeg",          // Adobe, RGB
		"video-001.cmyk.jpeg",         // Adobe, CMYK
		"video-001.progressive.jpeg",  // progressive
		"video-005.gray.q50.2x2.jpeg", // one component
	} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if data = shrink(data); data == nil {
			t.Fatalf("%s: no frame or no start of scan", name)
		}
		if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
			t.Fatalf("%s cut to 16×16: image/jpeg refuses it: %v", name, err)
		}
		compareDamaged(t, name+" cut to 16×16", data, 4)
		for _, i := range damageSites(data) {
			compareDamaged(t, fmt.Sprintf("%s cut at byte %d", name, i), data[:i], 1+i%7)
			bad := bytes.Clone(data)
			bad[i] ^= masks[i%len(masks)]
			compareDamaged(t, fmt.Sprintf("%s with byte %d flipped", name, i), bad, 1+(i+3)%7)
		}
	}
}

// compareDamaged decodes data with image/jpeg, and with Decode at full
// scale and at n/8, and compares.
func compareDamaged(t *testing.T, what string, data []byte, n int) {
	t.Helper()
	want, wantErr := jpeg.Decode(bytes.NewReader(data))
	got, err := Decode(bytes.NewReader(data), 8)
	if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Errorf("%s: error %v, image/jpeg's %v", what, err, wantErr)
		return
	}
	if err == nil {
		if d := divergence(got, want); d != "" {
			t.Errorf("%s: %s", what, d)
		}
	}
	if _, scaledErr := Decode(bytes.NewReader(data), n); (scaledErr == nil) != (err == nil) {
		t.Errorf("%s: error %v at %d/8, %v at 8/8", what, scaledErr, n, err)
	}
}

// divergence says how got differs from image/jpeg's decoding want of the
// same file, or returns "" when it does not. One difference is deliberate:
// a block without AC terms is filled with its DC value, clamped, instead of
// going through the transform. A damaged file can give a block a DC far
// beyond what eight-bit samples can produce, where image/jpeg's fixed-point
// transform overflows and wraps to arbitrary values; the fill saturates to
// 0 or 255. Samples that differ must be such a saturated fill.
func divergence(got, want image.Image) string {
	if got.Bounds() != want.Bounds() {
		return fmt.Sprintf("bounds %v, image/jpeg's %v", got.Bounds(), want.Bounds())
	}
	switch g := got.(type) {
	case *image.YCbCr:
		w, ok := want.(*image.YCbCr)
		if !ok || g.SubsampleRatio != w.SubsampleRatio {
			return fmt.Sprintf("a %T %v, image/jpeg's a %T", got, g.SubsampleRatio, want)
		}
		for _, d := range []string{
			planeDivergence("Y", g.Y, w.Y, g.YStride, true),
			planeDivergence("Cb", g.Cb, w.Cb, g.CStride, true),
			planeDivergence("Cr", g.Cr, w.Cr, g.CStride, true),
		} {
			if d != "" {
				return d
			}
		}
		return ""
	case *image.Gray:
		if w, ok := want.(*image.Gray); ok {
			return planeDivergence("gray", g.Pix, w.Pix, g.Stride, true)
		}
	case *image.RGBA:
		// The colour conversions mix the planes' blocks: only the
		// saturation can be checked.
		if w, ok := want.(*image.RGBA); ok {
			return planeDivergence("RGBA", g.Pix, w.Pix, g.Stride, false)
		}
	case *image.CMYK:
		if w, ok := want.(*image.CMYK); ok {
			return planeDivergence("CMYK", g.Pix, w.Pix, g.Stride, false)
		}
	}
	return fmt.Sprintf("a %T, image/jpeg's a %T", got, want)
}

// planeDivergence compares one plane's samples; with blocks, a sample that
// differs must lie in an 8×8 block filled with its value.
func planeDivergence(plane string, got, want []byte, stride int, blocks bool) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%s plane of %d samples, image/jpeg's %d", plane, len(got), len(want))
	}
	for i := range got {
		v := got[i]
		if v == want[i] {
			continue
		}
		if v != 0 && v != 255 {
			return fmt.Sprintf("%s sample %d is %d, image/jpeg's %d", plane, i, v, want[i])
		}
		if !blocks {
			continue
		}
		x0, y0 := i%stride/8*8, i/stride/8*8
		for y := y0; y < y0+8; y++ {
			for x := x0; x < x0+8 && y*stride+x < len(got); x++ {
				if got[y*stride+x] != v {
					return fmt.Sprintf("%s sample %d is %d, image/jpeg's %d, and its block is not filled with it", plane, i, v, want[i])
				}
			}
		}
	}
	return ""
}

// segment is a marker segment of a JPEG's headers.
type segment struct {
	at, length int // the offset of its marker; its length field
	marker     byte
}

// headers returns the marker segments of data up to and including the
// first start of scan, or nil when there is no scan.
func headers(data []byte) []segment {
	var segs []segment
	for i := 2; i+4 <= len(data) && data[i] == 0xff; {
		s := segment{at: i, marker: data[i+1], length: int(binary.BigEndian.Uint16(data[i+2:]))}
		segs = append(segs, s)
		if s.marker == 0xda { // SOS
			return segs
		}
		i += 2 + s.length
	}
	return nil
}

// damageSites returns where the test cuts or flips a byte: every byte of
// the headers but those deep in a table's values, of which it takes every
// fourth. A table's values only change the pixels, while decoding each
// damaged file, under the race detector, is what the test's time is made
// of.
func damageSites(data []byte) []int {
	var sites []int
	for _, s := range headers(data) {
		table := s.marker == 0xdb || s.marker == 0xc4 // DQT, DHT
		for off := 0; off < 2+s.length && s.at+off < len(data); off++ {
			// Past the marker, the length, a table's class and id, and a
			// Huffman table's 16 counts.
			if !table || off < 2+2+1+16 || off%4 == 0 {
				sites = append(sites, s.at+off)
			}
		}
	}
	return sites
}

// shrink returns data with a frame header that declares 16×16 pixels and
// with nothing after the first kilobyte of the first scan but an end of
// image, or nil when data has no frame header or no scan. Both decoders
// decode the first 16×16 pixels and skip the rest of the scan as extraneous
// data: the many decodes of the test stay quick, and the headers are what
// they were.
func shrink(data []byte) []byte {
	segs := headers(data)
	if segs == nil {
		return nil
	}
	data = bytes.Clone(data)
	for _, s := range segs {
		if s.marker == 0xc0 || s.marker == 0xc1 || s.marker == 0xc2 { // SOF
			binary.BigEndian.PutUint16(data[s.at+5:], 16) // height
			binary.BigEndian.PutUint16(data[s.at+7:], 16) // width
			sos := segs[len(segs)-1]
			end := min(sos.at+2+sos.length+1024, len(data))
			// A scan's data has no 0xff but before 0x00 (a stuffed byte)
			// or a restart marker: the first other one starts a segment,
			// which must not be cut.
			for i := sos.at + 2 + sos.length; i+1 < end; i++ {
				if next := data[i+1]; data[i] == 0xff && next != 0 && (next < 0xd0 || next > 0xd7) {
					end = i
					break
				}
			}
			return append(data[:end:end], 0xff, 0xd9) // EOI
		}
	}
	return nil
}
