package imageworker

import (
	"cmp"
	"runtime"
	"time"

	"github.com/productd/productd/imageworker/internal/compress"
	"github.com/productd/productd/imageworker/internal/fetch"
)

// Config is every setting of the worker. Zero fields take the default in
// their comment.
type Config struct {
	// MaxSide is the box every image is fitted into, in pixels per side;
	// smaller images keep their size (default 1024).
	MaxSide int
	// Quality is the JPEG quality of compressed images (default 82; see
	// compress.DefaultQuality for why).
	Quality int
	// MaxPixels refuses images whose header declares more pixels, before
	// any decoding (default 50 million).
	MaxPixels int64
	// MaxScans refuses JPEGs of more scans, before any decoding (default
	// 100; see compress.DefaultMaxScans).
	MaxScans int
	// CompressTimeout is the time budget of decoding and fitting one image;
	// an image over it fails for good as too costly to decode (default 10s).
	CompressTimeout time.Duration

	// MaxDownloadBytes caps an original, downloaded or read from storage
	// (default 25 MiB).
	MaxDownloadBytes int64
	// FetchTimeout bounds one download, redirects included (default 15s).
	FetchTimeout time.Duration
	// MaxRedirects bounds the redirects a download follows (default 5).
	MaxRedirects int
	// FetchAllow lists host names, IP addresses and CIDRs, each with an
	// optional port, that the SSRF guard lets through (IMAGE_FETCH_ALLOW;
	// default empty; see package netallow for what each entry allows).
	FetchAllow []string

	// Concurrency is how many images are fetched, compressed and stored at
	// once, across messages, and how many messages are handled at once
	// (default GOMAXPROCS: compressing is CPU-bound). Memory grows with it:
	// each image in flight holds its original (up to MaxDownloadBytes) and
	// libvips' decoded picture, at most 3 bytes a pixel after the JPEG
	// shrink, 4 to 8 for PNG and WebP, under MaxPixels (see
	// docs/BENCHMARKS.md).
	Concurrency int
	// Prefetch is how many unacknowledged messages RabbitMQ sends ahead
	// (default 2 × Concurrency).
	Prefetch int
	// MessageTimeout bounds the handling of one message; running out is a
	// transient failure, retried later (default 2m).
	MessageTimeout time.Duration
	// MaxUnfinishedRuns is how many runs on the same images may start and
	// never end (each a worker process that died holding them) before the
	// next one gives up on them instead of trying again (default 3).
	// Redeliveries of messages that no run started do not count.
	MaxUnfinishedRuns int
	// DrainTimeout is how long, once Run's context ends, messages already
	// being handled may take to finish; those still running then are
	// returned to the queue (default 20s).
	DrainTimeout time.Duration

	// Observer is told about every delivery, step and result (package
	// telemetry's metrics and spans). Nil means none.
	Observer Observer
}

// Defaults of Config not given by the compress and fetch packages.
const (
	DefaultMessageTimeout    = 2 * time.Minute
	DefaultDrainTimeout      = 20 * time.Second
	DefaultMaxUnfinishedRuns = 3
)

func (c Config) withDefaults() Config {
	c.MaxSide = cmp.Or(max(c.MaxSide, 0), compress.DefaultMaxSide)
	if c.Quality <= 0 || c.Quality > 100 {
		c.Quality = compress.DefaultQuality
	}
	c.MaxPixels = cmp.Or(max(c.MaxPixels, 0), compress.DefaultMaxPixels)
	c.MaxScans = cmp.Or(max(c.MaxScans, 0), compress.DefaultMaxScans)
	c.CompressTimeout = cmp.Or(max(c.CompressTimeout, 0), compress.DefaultTimeout)
	if c.MaxDownloadBytes <= 0 {
		c.MaxDownloadBytes = fetch.DefaultMaxBytes
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = fetch.DefaultTimeout
	}
	if c.MaxRedirects <= 0 {
		c.MaxRedirects = fetch.DefaultMaxRedirects
	}
	if c.Concurrency <= 0 {
		c.Concurrency = runtime.GOMAXPROCS(0)
	}
	if c.Prefetch <= 0 {
		c.Prefetch = 2 * c.Concurrency
	}
	if c.MessageTimeout <= 0 {
		c.MessageTimeout = DefaultMessageTimeout
	}
	c.MaxUnfinishedRuns = cmp.Or(c.MaxUnfinishedRuns, DefaultMaxUnfinishedRuns)
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	return c
}
