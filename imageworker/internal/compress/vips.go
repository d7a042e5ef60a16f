package compress

import (
	"sync"

	"github.com/davidbyttow/govips/v2/vips"
	"github.com/sirupsen/logrus"
)

// libvips is a process-wide library: it is started once, with the settings
// and logger of the first Compressor, and never shut down (govips cannot
// start it again once stopped). This is the one piece of process state the
// package keeps, because the C library keeps it anyway.
var vipsStart sync.Once

// startVips starts libvips for this package's use, once per process.
//
// Concurrency is 1: the worker already runs one image per core, so libvips
// threads of its own would only compete with those. The operation cache is
// off: every image is decoded once, and a cached decode would only hold
// memory outside the Go heap. libvips' messages go to log at debug level
// (warnings about a damaged file reach the caller as the decode's error) and
// errors at error level; with a nil log they are dropped.
func startVips(log *logrus.Logger) {
	vipsStart.Do(func() {
		vips.LoggingSettings(func(domain string, level vips.LogLevel, msg string) {
			if log == nil {
				return
			}
			e := log.WithFields(logrus.Fields{"component": "libvips", "domain": domain})
			switch level {
			case vips.LogLevelError, vips.LogLevelCritical:
				e.Error(msg)
			default:
				e.Debug(msg)
			}
		}, vips.LogLevelWarning)
		vips.Startup(&vips.Config{ConcurrencyLevel: 1, MaxCacheFiles: 0, MaxCacheMem: 0, MaxCacheSize: 0})
	})
}
