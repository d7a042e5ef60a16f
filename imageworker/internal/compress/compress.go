// Package compress turns an untrusted image file into a small web image: it
// sniffs the format against an allow-list, refuses oversized images from
// their header before any pixel is decoded, decodes, fits the picture into a
// box without upscaling, turns it upright by its EXIF orientation, and
// encodes it as JPEG, or as PNG when it has transparency.
//
// It is pure computation: no I/O, no goroutines of its own beyond bounded
// parallelism inside one call, safe for concurrent use.
package compress

import (
	"bytes"
	"image"
	"image/gif"
	"image/png"
	"sync"
	"sync/atomic"

	"github.com/disintegration/imaging"
	"golang.org/x/image/webp"

	"github.com/productd/productd"
	"github.com/productd/productd/imageworker/internal/jpegscale"
)

// Config sets the output and the limits. Zero fields take their defaults.
type Config struct {
	// MaxSide is the box the picture is fitted into, in pixels per side
	// (default 1024). Smaller pictures keep their size.
	MaxSide int
	// Quality is the JPEG quality, 1 to 100 (default 82). See DefaultQuality.
	Quality int
	// MaxPixels bounds width × height as the header declares it (default
	// 50 million, more than any common camera writes). It bounds the memory
	// one image can take: see the package's benchmark notes.
	MaxPixels int64
}

// Defaults of Config.
const (
	DefaultMaxSide   = 1024
	DefaultMaxPixels = 50_000_000
	// DefaultQuality is 82: on the benchmark photographs fitted into 1024 px
	// the files are about 30 % smaller than at 90, and viewed at 100 % the
	// smooth backgrounds (sky, bokeh) show no blocking; 75 would save only
	// another 19 %, closer to where JPEG's blocks start to show.
	DefaultQuality = 82
)

func (c Config) withDefaults() Config {
	if c.MaxSide <= 0 {
		c.MaxSide = DefaultMaxSide
	}
	if c.Quality <= 0 || c.Quality > 100 {
		c.Quality = DefaultQuality
	}
	if c.MaxPixels <= 0 {
		c.MaxPixels = DefaultMaxPixels
	}
	return c
}

// Result is a compressed image.
type Result struct {
	Data   []byte
	Format Format // JPEG or PNG
	Width  int
	Height int
	// Source is the format of the original.
	Source Format
}

// Compressor compresses images by one Config.
type Compressor struct {
	cfg     Config
	decodes atomic.Int64
	bufs    sync.Pool // *bytes.Buffer for encoding
}

// New returns a Compressor for cfg.
func New(cfg Config) *Compressor {
	return &Compressor{cfg: cfg.withDefaults()}
}

// Config returns the compressor's configuration with its defaults filled in.
func (c *Compressor) Config() Config { return c.cfg }

// Decodes returns how many images reached a pixel decoder. Files refused
// from their header (not an image, too many pixels) never count.
func (c *Compressor) Decodes() int64 { return c.decodes.Load() }

// Compress returns the web form of the image in data. Its errors are
// application errors a person can act on: EUNSUPPORTED (not an accepted
// image), ETOOLARGE (too many pixels), EUNPROCESSABLE (corrupt); none is
// worth retrying.
func (c *Compressor) Compress(data []byte) (*Result, error) {
	f, err := Sniff(data)
	if err != nil {
		return nil, err
	}
	hdr, err := decodeConfig(f, data)
	if err != nil {
		return nil, err
	}
	if px := int64(hdr.Width) * int64(hdr.Height); px > c.cfg.MaxPixels {
		return nil, productd.Errorf(productd.ETOOLARGE, "the image is %dx%d pixels (%.0f megapixels); the limit is %.0f megapixels",
			hdr.Width, hdr.Height, float64(px)/1e6, float64(c.cfg.MaxPixels)/1e6)
	}

	c.decodes.Add(1)
	img, orient, err := c.decode(f, data, hdr)
	if err != nil {
		return nil, err
	}
	img = c.fit(img, orient)

	out := JPEG
	if !opaque(img) {
		out = PNG
	}
	enc, err := c.encode(img, out)
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	return &Result{Data: enc, Format: out, Width: b.Dx(), Height: b.Dy(), Source: f}, nil
}

// decode decodes data, which decodeConfig has checked.
func (c *Compressor) decode(f Format, data []byte, hdr image.Config) (image.Image, orientation, error) {
	var img image.Image
	var err error
	orient := orientation(1)
	r := bytes.NewReader(data)
	switch f {
	case JPEG:
		orient = jpegOrientation(data)
		img, err = jpegscale.Decode(r, scaleFor(hdr.Width, hdr.Height, c.cfg.MaxSide))
	case PNG:
		img, err = png.Decode(r)
	case GIF:
		img, err = gif.Decode(r) // the first frame only
	case WebP:
		img, err = webp.Decode(r)
	}
	if err != nil {
		return nil, orient, corrupt(f, err)
	}
	return img, orient, nil
}

// fit shrinks img into the box, never enlarging it, and turns it upright.
// JPEG planes take the planar path; everything else goes through imaging,
// as RGBA.
func (c *Compressor) fit(img image.Image, o orientation) image.Image {
	switch m := img.(type) {
	case *image.YCbCr:
		return fitYCbCr(m, c.cfg.MaxSide, o)
	case *image.Gray:
		return fitGray(m, c.cfg.MaxSide, o)
	}
	b := img.Bounds()
	if w, h := fitSize(b.Dx(), b.Dy(), c.cfg.MaxSide); w != b.Dx() || h != b.Dy() {
		img = imaging.Resize(img, w, h, imaging.Lanczos)
	}
	return o.apply(img)
}

// opaque reports whether every pixel of img is fully opaque.
func opaque(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return o.Opaque()
	}
	return false
}

// encode writes img in format f into a pooled buffer and returns a copy of
// the bytes, so the buffer's capacity serves the next image.
func (c *Compressor) encode(img image.Image, f Format) ([]byte, error) {
	buf, _ := c.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer c.bufs.Put(buf)
	buf.Reset()
	var err error
	switch f {
	case JPEG:
		err = imaging.Encode(buf, img, imaging.JPEG, imaging.JPEGQuality(c.cfg.Quality))
	default:
		err = png.Encode(buf, img)
	}
	if err != nil {
		return nil, productd.Errorf(productd.EINTERNAL, "encode %s: %v", f, err)
	}
	return bytes.Clone(buf.Bytes()), nil
}
