// Package compress turns an untrusted image file into a small web image: it
// sniffs the format against an allow-list, refuses oversized images from
// their header before any pixel is decoded, decodes through libvips (a JPEG
// shrunk while it is decoded), fits the picture into a box without
// upscaling, turns it upright by its EXIF orientation, and encodes it as
// JPEG, or as PNG when it has transparency.
//
// libvips is a C library: building the package needs cgo and libvips'
// headers (Debian's libvips-dev), running it the shared library (libvips42).
// It is pure computation otherwise: no I/O, safe for concurrent use.
package compress

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"image"
	"image/png"
	"sync"
	"sync/atomic"
	"time"

	"github.com/disintegration/imaging"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/settings"
)

// Config sets the output and the limits. Zero fields take their defaults;
// negative ones, and a Quality over 100, are refused.
type Config struct {
	// MaxSide is the box the picture is fitted into, in pixels per side.
	// Smaller pictures keep their size. Zero means DefaultMaxSide (1024).
	MaxSide int
	// Quality is the JPEG quality, 1 to 100. Zero means DefaultQuality
	// (82).
	Quality int
	// MaxPixels bounds width × height as the header declares it. It bounds
	// the memory one image can take: see the package's benchmark notes.
	// Zero means DefaultMaxPixels (50 million, more than any common camera
	// writes).
	MaxPixels int64
	// MaxScans refuses a JPEG of more scans before it is decoded. Zero
	// means DefaultMaxScans (100); see budget.go.
	MaxScans int
	// Timeout is the wall-time budget of one image: decoding it and fitting
	// it into the box. Running out is a permanent failure, the image being
	// too costly. Zero means DefaultTimeout (10 s).
	Timeout time.Duration
	// Logger receives libvips' messages, at debug level (errors at error
	// level). Nil drops them. libvips is started once per process, with
	// the Logger of the first Compressor made.
	Logger *logrus.Logger
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
	// DefaultMaxScans is ten times the scans of libjpeg's progressive
	// script.
	DefaultMaxScans = 100
	// DefaultTimeout is about fifty times what the largest image allowed
	// costs on one core (an 18 MP photograph: 0.1-0.2 s), so a busy
	// machine does not fail honest images.
	DefaultTimeout = 10 * time.Second
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.MaxSide = cmp.Or(c.MaxSide, DefaultMaxSide)
	c.Quality = cmp.Or(c.Quality, DefaultQuality)
	c.MaxPixels = cmp.Or(c.MaxPixels, DefaultMaxPixels)
	c.MaxScans = cmp.Or(c.MaxScans, DefaultMaxScans)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	if err := cmp.Or(
		settings.NonNegative("compress", settings.F("MaxSide", c.MaxSide), settings.F("Quality", c.Quality), settings.F("MaxScans", c.MaxScans)),
		settings.NonNegative("compress", settings.F("MaxPixels", c.MaxPixels)),
		settings.NonNegative("compress", settings.F("Timeout", c.Timeout)),
	); err != nil {
		return err
	}
	if c.Quality > 100 {
		return fmt.Errorf("compress: Config.Quality is %d: it must be 1 to 100", c.Quality)
	}
	return nil
}

// Result is a compressed image.
type Result struct {
	Data   []byte
	Format Format // JPEG or PNG
	Width  int
	Height int
	// Source is the format of the original.
	Source Format
	// Decode, Resize and Encode time Compress's steps. libvips decodes
	// lazily, reducing the picture as it reads it, so for the pictures it
	// decodes Decode includes most of the reduction and Resize is the
	// orientation that is left.
	Decode, Resize, Encode Step
}

// Step is when one step of Compress started and how long it took.
type Step struct {
	Start time.Time
	Took  time.Duration
}

// since returns the Step that started at start and ends now.
func since(start time.Time) Step { return Step{Start: start, Took: time.Since(start)} }

// Compressor compresses images by one Config.
type Compressor struct {
	cfg      Config
	decodes  atomic.Int64
	decoding atomic.Int64
	// beforeDecode, when set, runs on the decoding goroutine first: tests
	// make it panic.
	beforeDecode func()
	bufs         sync.Pool // *bytes.Buffer for encoding
}

// New returns a Compressor for cfg. It panics when a setting cannot work
// (see Config): the imageworker refuses such a setting first.
func New(cfg Config) *Compressor {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	startVips(cfg.Logger)
	return &Compressor{cfg: cfg}
}

// Config returns the compressor's configuration with its defaults filled in.
func (c *Compressor) Config() Config { return c.cfg }

// Decodes returns how many images reached a pixel decoder. Files refused
// from their header (not an image, too many pixels) never count.
func (c *Compressor) Decodes() int64 { return c.decodes.Load() }

// Decoding returns how many decodes are running now, those Compress
// returned from early included (see budget.go).
func (c *Compressor) Decoding() int64 { return c.decoding.Load() }

// Compress returns the web form of the image in data. Its errors are
// application errors a person can act on: EUNSUPPORTED (not an accepted
// image), ETOOLARGE (too many pixels or scans, or over the time budget:
// too costly to decode), EUNPROCESSABLE (corrupt); none is worth retrying.
// When ctx ends first, Compress returns ctx's error at once (see budget.go
// for what happens to the decode then).
func (c *Compressor) Compress(ctx context.Context, data []byte) (*Result, error) {
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

	if f == JPEG {
		if n := jpegScans(data, c.cfg.MaxScans); n > c.cfg.MaxScans {
			return nil, productd.Errorf(productd.ETOOLARGE, "the image is too costly to decode: the JPEG has more than %d scans", c.cfg.MaxScans)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var decode, resize Step
	img, err := c.decodeFit(ctx, f, data, hdr, &decode, &resize)
	if err != nil {
		return nil, err
	}

	out := JPEG
	if !opaque(img) {
		out = PNG
	}
	start := time.Now()
	enc, err := c.encode(img, out)
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	return &Result{Data: enc, Format: out, Width: b.Dx(), Height: b.Dy(), Source: f,
		Decode: decode, Resize: resize, Encode: since(start)}, nil
}

// decodeFit decodes data and fits it into the box within the budget, on a
// goroutine of its own so that it can be left behind. It times the two
// steps into decode and resize, which it writes only before it returns a
// picture.
func (c *Compressor) decodeFit(ctx context.Context, f Format, data []byte, hdr image.Config, decode, resize *Step) (image.Image, error) {
	bctx, cancel := context.WithTimeoutCause(ctx, c.cfg.Timeout, errOverBudget)
	defer cancel()
	type result struct {
		img            image.Image
		err            error
		decode, resize Step
	}
	done := make(chan result, 1)
	c.decodes.Add(1)
	c.decoding.Add(1)
	go func() {
		var r result
		defer c.decoding.Add(-1)
		defer func() {
			// A decoder's panic fails this image, not the process.
			if p := recover(); p != nil {
				r = result{err: productd.Errorf(productd.EUNPROCESSABLE, "decoding failed unexpectedly (%v)", p)}
			}
			done <- r
		}()
		if c.beforeDecode != nil {
			c.beforeDecode()
		}
		start := time.Now()
		d, err := c.decode(bctx, f, data, hdr)
		if err != nil {
			r.err = err
			return
		}
		r.decode, start = since(start), time.Now()
		r.img = c.fit(d)
		r.resize = since(start)
	}()
	select {
	case r := <-done:
		if r.err == nil || bctx.Err() == nil {
			*decode, *resize = r.decode, r.resize
			return r.img, r.err
		}
		// Failed because the budget or ctx ended: say which.
	case <-bctx.Done():
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, productd.Errorf(productd.ETOOLARGE, "the image is too costly to decode: it took more than %v", c.cfg.Timeout)
}

// fit shrinks the picture into the box, never enlarging it, and turns it
// upright. libvips' pictures are fitted already; image/jpeg's take the
// integer path of planar.go, or imaging's for its rarer colour models.
func (c *Compressor) fit(d *decoded) image.Image {
	img, o := d.img, d.orient
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
