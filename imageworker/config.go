package imageworker

import (
	"cmp"
	"fmt"
	"runtime"
	"time"

	"github.com/productd/productd/imageworker/internal/compress"
	"github.com/productd/productd/imageworker/internal/fetch"
	"github.com/productd/productd/internal/settings"
)

// Config is every setting of the worker. Zero fields take the default in
// their comment (the compress and fetch packages' DefaultX where it says
// so); negative ones, and a Quality over 100, are refused.
type Config struct {
	// MaxSide is the box every image is fitted into, in pixels per side;
	// smaller images keep their size. Zero means compress.DefaultMaxSide
	// (1024).
	MaxSide int
	// Quality is the JPEG quality of compressed images, 1 to 100. Zero
	// means compress.DefaultQuality (82; its comment says why).
	Quality int
	// MaxPixels refuses images whose header declares more pixels, before
	// any decoding. Zero means compress.DefaultMaxPixels (50 million).
	MaxPixels int64
	// MaxScans refuses JPEGs of more scans, before any decoding. Zero
	// means compress.DefaultMaxScans (100).
	MaxScans int
	// CompressTimeout is the time budget of decoding and fitting one image;
	// an image over it fails for good as too costly to decode. Zero means
	// compress.DefaultTimeout (10 s).
	CompressTimeout time.Duration

	// MaxDownloadBytes caps an original, downloaded or read from storage.
	// Zero means fetch.DefaultMaxBytes (25 MiB).
	MaxDownloadBytes int64
	// FetchTimeout bounds one download, redirects included. Zero means
	// fetch.DefaultTimeout (15 s).
	FetchTimeout time.Duration
	// MaxRedirects bounds the redirects a download follows. Zero means
	// fetch.DefaultMaxRedirects (5).
	MaxRedirects int
	// FetchAllow lists host names, IP addresses and CIDRs, each with an
	// optional port, that the SSRF guard lets through (IMAGE_FETCH_ALLOW;
	// default empty; see package netallow for what each entry allows).
	FetchAllow []string

	// Concurrency is how many images are fetched, compressed and stored at
	// once, across messages, and how many messages are handled at once.
	// Zero means DefaultConcurrency() (GOMAXPROCS). Memory grows with it:
	// each image in flight holds its original (up to MaxDownloadBytes) and
	// libvips' decoded picture, at most 3 bytes a pixel after the JPEG
	// shrink, 4 to 8 for PNG and WebP, under MaxPixels (see
	// docs/BENCHMARKS.md).
	Concurrency int
	// Prefetch is how many unacknowledged messages RabbitMQ sends ahead.
	// Zero means 2 × Concurrency.
	Prefetch int
	// MessageTimeout bounds the handling of one message; running out is a
	// transient failure, retried later. Zero means DefaultMessageTimeout
	// (2 min).
	MessageTimeout time.Duration
	// MaxUnfinishedRuns is how many runs on the same images may start and
	// never end (each a worker process that died holding them) before the
	// next one gives up on them instead of trying again. Redeliveries of
	// messages that no run started do not count. Zero means
	// DefaultMaxUnfinishedRuns (3).
	MaxUnfinishedRuns int
	// DrainTimeout is how long, once Run's context ends, messages already
	// being handled may take to finish; those still running then are
	// returned to the queue. Zero means DefaultDrainTimeout (20 s).
	DrainTimeout time.Duration

	// Observer is told about every delivery, step and result (package
	// telemetry's metrics and spans). Nil means none.
	Observer Observer
}

// DefaultConcurrency is Config.Concurrency's default: GOMAXPROCS, since
// compressing is CPU-bound.
func DefaultConcurrency() int { return runtime.GOMAXPROCS(0) }

// Defaults of Config not given by the compress and fetch packages.
const (
	DefaultMessageTimeout    = 2 * time.Minute
	DefaultDrainTimeout      = 20 * time.Second
	DefaultMaxUnfinishedRuns = 3
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.MaxSide = cmp.Or(c.MaxSide, compress.DefaultMaxSide)
	c.Quality = cmp.Or(c.Quality, compress.DefaultQuality)
	c.MaxPixels = cmp.Or(c.MaxPixels, compress.DefaultMaxPixels)
	c.MaxScans = cmp.Or(c.MaxScans, compress.DefaultMaxScans)
	c.CompressTimeout = cmp.Or(c.CompressTimeout, compress.DefaultTimeout)
	c.MaxDownloadBytes = cmp.Or(c.MaxDownloadBytes, fetch.DefaultMaxBytes)
	c.FetchTimeout = cmp.Or(c.FetchTimeout, fetch.DefaultTimeout)
	c.MaxRedirects = cmp.Or(c.MaxRedirects, fetch.DefaultMaxRedirects)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency())
	c.Prefetch = cmp.Or(c.Prefetch, 2*c.Concurrency)
	c.MessageTimeout = cmp.Or(c.MessageTimeout, DefaultMessageTimeout)
	c.MaxUnfinishedRuns = cmp.Or(c.MaxUnfinishedRuns, DefaultMaxUnfinishedRuns)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, DefaultDrainTimeout)
	c.Observer = cmp.Or[Observer](c.Observer, nopObserver{})
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults. compress and fetch check the settings they take
// again, with their own names.
func (c Config) validate() error {
	if err := cmp.Or(
		settings.NonNegative("imageworker", settings.F("MaxSide", c.MaxSide), settings.F("Quality", c.Quality), settings.F("MaxScans", c.MaxScans),
			settings.F("MaxRedirects", c.MaxRedirects), settings.F("Concurrency", c.Concurrency), settings.F("Prefetch", c.Prefetch),
			settings.F("MaxUnfinishedRuns", c.MaxUnfinishedRuns)),
		settings.NonNegative("imageworker", settings.F("MaxPixels", c.MaxPixels), settings.F("MaxDownloadBytes", c.MaxDownloadBytes)),
		settings.NonNegative("imageworker", settings.F("CompressTimeout", c.CompressTimeout), settings.F("FetchTimeout", c.FetchTimeout),
			settings.F("MessageTimeout", c.MessageTimeout), settings.F("DrainTimeout", c.DrainTimeout)),
	); err != nil {
		return err
	}
	if c.Quality > 100 {
		return fmt.Errorf("imageworker: Config.Quality is %d: it must be 1 to 100", c.Quality)
	}
	return nil
}
