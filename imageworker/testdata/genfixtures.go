//go:build ignore

// genfixtures writes the image worker's test fixtures into the current
// directory. Run it from imageworker/testdata:
//
//	go run genfixtures.go
//
// Every fixture is generated, so the repository carries no third-party
// pictures. The WebP and progressive JPEG fixtures need libvips' `vips`
// command (apt-get install -y libvips-tools), as Go has no encoder for them.
package main

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
)

func main() {
	photo := photoLike(640, 427, 1)
	write("photo.jpg", encodeJPEG(photo, 90))
	writePNG("photo.png", photo)

	// A portrait shot on a phone held sideways: the pixels are stored
	// rotated, with a red square in the stored top-left corner, and EXIF
	// orientation 6 says to turn them 90° clockwise. Upright, the picture is
	// 427 wide and 640 high and the square is at the top right.
	sideways := photoLike(640, 427, 2)
	for y := 0; y < 40; y++ {
		for x := 0; x < 40; x++ {
			sideways.Set(x, y, color.RGBA{230, 0, 0, 255})
		}
	}
	write("photo-exif6.jpg", withOrientation(encodeJPEG(sideways, 90), 6))

	gray := image.NewGray(photo.Bounds())
	for y := 0; y < 427; y++ {
		for x := 0; x < 640; x++ {
			gray.Set(x, y, photo.At(x, y))
		}
	}
	write("gray.jpg", encodeJPEG(gray, 90))

	alpha := image.NewNRGBA(image.Rect(0, 0, 400, 300))
	for y := 0; y < 300; y++ {
		for x := 0; x < 400; x++ {
			// An opaque disc with a soft edge on a transparent ground.
			d := math.Hypot(float64(x-200), float64(y-150))
			a := math.Max(0, math.Min(1, (120-d)/6))
			alpha.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / 400), 90, uint8(y * 255 / 300), uint8(a * 255)})
		}
	}
	writePNG("alpha.png", alpha)

	var g bytes.Buffer
	anim := &gif.GIF{}
	for i := 0; i < 2; i++ {
		frame := image.NewPaletted(image.Rect(0, 0, 300, 200), palette.Plan9)
		for y := 0; y < 200; y++ {
			for x := 0; x < 300; x++ {
				frame.Set(x, y, color.RGBA{uint8(x + 100*i), uint8(y), 120, 255})
			}
		}
		anim.Image = append(anim.Image, frame)
		anim.Delay = append(anim.Delay, 50)
	}
	if err := gif.EncodeAll(&g, anim); err != nil {
		log.Fatal(err)
	}
	write("anim.gif", g.Bytes())

	// Corrupt: a valid header and the first part of the scan, then noise
	// with no end-of-image marker.
	good := encodeJPEG(photo, 90)
	bad := append([]byte(nil), good[:len(good)/3]...)
	r := rand.New(rand.NewPCG(3, 3))
	for i := 0; i < 2000; i++ {
		bad = append(bad, byte(r.IntN(255)))
	}
	write("corrupt.jpg", bad)

	write("not-an-image.jpg", []byte("This is a text file with a .jpg name.\nIt must be refused before any decoder sees it.\n"))

	// Bombs: headers that claim 20,000 × 20,000 pixels (400 megapixels,
	// over a gigabyte decoded) in a few kilobytes.
	write("bomb.jpg", jpegBomb(good, 20000, 20000))
	write("bomb.png", pngBomb(20000, 20000))

	vips("photo.png", "photo.webp[Q=80]")
	vips("alpha.png", "alpha.webp[lossless]")
	vips("photo.png", "photo-progressive.jpg[Q=90,interlace]")
	vips("photo.png", "photo-444.jpg[Q=90,subsample-mode=off]")
	os.Remove("photo.png")

	// A flat grey square of 16 megapixels, progressive: every scan after
	// the first is all end-of-band runs, a few bytes. Tests repeat one of
	// them thousands of times (imagetest.RepeatScan) to build a small file
	// that costs a decoder a pass over 262,144 blocks per copy.
	flat := image.NewGray(image.Rect(0, 0, 4096, 4096))
	for i := range flat.Pix {
		flat.Pix[i] = 128
	}
	writePNG("flat.png", flat)
	vips("flat.png", "flat-progressive.jpg[Q=75,interlace]")
	os.Remove("flat.png")
}

// photoLike draws a landscape with the statistics of a photograph: smooth
// gradients, hard edges, textures at every scale and sensor grain. Synthetic
// gradients alone decode far faster than photographs and hide real costs.
func photoLike(w, h int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 7))
	noise := newNoise(r)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			ridge := 0.45 + 0.15*noise.fbm(fx*3, 0.5, 4)
			var c [3]float64
			switch {
			case fy < ridge: // sky: a gradient with soft clouds
				cloud := math.Max(0, noise.fbm(fx*4, fy*8, 5))
				c = [3]float64{90 + 80*fy + 150*cloud, 140 + 60*fy + 110*cloud, 230 - 20*fy + 20*cloud}
			case fy < ridge+0.08: // distant hills: dark, fine texture
				t := noise.fbm(fx*40, fy*40, 4)
				c = [3]float64{50 + 30*t, 70 + 40*t, 60 + 20*t}
			default: // meadow: coarse and fine texture, warm highlights
				t := noise.fbm(fx*12, fy*30, 6)
				f := noise.fbm(fx*120, fy*160, 2)
				c = [3]float64{90 + 70*t + 40*f, 130 + 60*t + 30*f, 40 + 30*t}
			}
			// A few sunlit stones with hard edges and shading.
			for i := 0; i < 4; i++ {
				cx, cy, rad := 0.15+0.22*float64(i), 0.8-0.04*float64(i), 0.05+0.01*float64(i)
				if d := math.Hypot(fx-cx, (fy-cy)*float64(h)/float64(w)); d < rad {
					s := 1 - d/rad
					c = [3]float64{120 + 110*s, 115 + 100*s, 110 + 90*s}
				}
			}
			grain := r.NormFloat64() * 4
			img.SetRGBA(x, y, color.RGBA{px(c[0] + grain), px(c[1] + grain), px(c[2] + grain), 255})
		}
	}
	return img
}

func px(v float64) uint8 { return uint8(math.Max(0, math.Min(255, v))) }

// noise is 2-D value noise on a 256-cell lattice.
type noise struct{ v [256][256]float64 }

func newNoise(r *rand.Rand) *noise {
	n := &noise{}
	for i := range n.v {
		for j := range n.v[i] {
			n.v[i][j] = r.Float64()*2 - 1
		}
	}
	return n
}

func (n *noise) at(x, y float64) float64 {
	x0, y0 := math.Floor(x), math.Floor(y)
	tx, ty := x-x0, y-y0
	tx, ty = tx*tx*(3-2*tx), ty*ty*(3-2*ty)
	i, j := int(x0)&255, int(y0)&255
	a := n.v[i][j] + (n.v[(i+1)&255][j]-n.v[i][j])*tx
	b := n.v[i][(j+1)&255] + (n.v[(i+1)&255][(j+1)&255]-n.v[i][(j+1)&255])*tx
	return a + (b-a)*ty
}

func (n *noise) fbm(x, y float64, octaves int) float64 {
	var sum, amp, norm float64 = 0, 1, 0
	for o := 0; o < octaves; o++ {
		sum += amp * n.at(x, y)
		norm += amp
		x, y, amp = x*2, y*2, amp/2
	}
	return sum / norm
}

func encodeJPEG(img image.Image, q int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}

func writePNG(name string, img image.Image) {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		log.Fatal(err)
	}
	write(name, b.Bytes())
}

// withOrientation inserts an EXIF APP1 segment holding only the Orientation
// tag right after the JPEG's start-of-image marker.
func withOrientation(jpg []byte, o uint16) []byte {
	tiff := []byte("MM\x00\x2a\x00\x00\x00\x08")  // big-endian, first IFD at 8
	tiff = binary.BigEndian.AppendUint16(tiff, 1) // one entry
	tiff = binary.BigEndian.AppendUint16(tiff, 0x0112)
	tiff = binary.BigEndian.AppendUint16(tiff, 3) // SHORT
	tiff = binary.BigEndian.AppendUint32(tiff, 1) // one value
	tiff = binary.BigEndian.AppendUint16(tiff, o)
	tiff = append(tiff, 0, 0, 0, 0, 0, 0) // value padding, no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := append([]byte{0xFF, 0xD8}, seg...)
	return append(out, jpg[2:]...)
}

// jpegBomb rewrites the frame header of jpg to claim w × h pixels and cuts
// the scan short.
func jpegBomb(jpg []byte, w, h int) []byte {
	out := append([]byte(nil), jpg[:min(len(jpg), 2048)]...)
	for i := 2; i+9 < len(out); {
		if out[i] != 0xFF {
			log.Fatal("jpegBomb: lost the markers")
		}
		n := int(binary.BigEndian.Uint16(out[i+2:]))
		if out[i+1] == 0xC0 { // SOF0: length, precision, height, width
			binary.BigEndian.PutUint16(out[i+5:], uint16(h))
			binary.BigEndian.PutUint16(out[i+7:], uint16(w))
			return out
		}
		i += 2 + n
	}
	log.Fatal("jpegBomb: no SOF0")
	return nil
}

// pngBomb writes a PNG whose header claims w × h grey pixels, with the first
// rows of data.
func pngBomb(w, h int) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 8, 0, 0, 0, 0) // 8-bit grey
	chunk(&b, "IHDR", ihdr)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(make([]byte, 4*(w+1)))
	zw.Close()
	chunk(&b, "IDAT", z.Bytes())
	chunk(&b, "IEND", nil)
	return b.Bytes()
}

func chunk(b *bytes.Buffer, typ string, data []byte) {
	binary.Write(b, binary.BigEndian, uint32(len(data)))
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	b.WriteString(typ)
	b.Write(data)
	binary.Write(b, binary.BigEndian, crc.Sum32())
}

func vips(in, out string) {
	if o, err := exec.Command("vips", "copy", in, out).CombinedOutput(); err != nil {
		log.Fatalf("vips copy %s %s: %v\n%s", in, out, err, o)
	}
}

func write(name string, data []byte) {
	if err := os.WriteFile(name, data, 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("%s: %d bytes", name, len(data))
}
