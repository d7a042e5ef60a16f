package imageworker

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/productd/productd/imageworker/internal/compress"
	"github.com/productd/productd/imageworker/internal/fetch"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	want := Config{
		MaxSide:           compress.DefaultMaxSide,
		Quality:           compress.DefaultQuality,
		MaxPixels:         compress.DefaultMaxPixels,
		MaxScans:          compress.DefaultMaxScans,
		CompressTimeout:   compress.DefaultTimeout,
		MaxDownloadBytes:  fetch.DefaultMaxBytes,
		FetchTimeout:      fetch.DefaultTimeout,
		MaxRedirects:      fetch.DefaultMaxRedirects,
		Concurrency:       DefaultConcurrency(),
		Prefetch:          2 * DefaultConcurrency(),
		MessageTimeout:    DefaultMessageTimeout,
		MaxUnfinishedRuns: DefaultMaxUnfinishedRuns,
		DrainTimeout:      DefaultDrainTimeout,
		Observer:          nopObserver{},
	}
	if diff := cmp.Diff(want, Config{}.withDefaults()); diff != "" {
		t.Errorf("Config{}.withDefaults() (-want +got):\n%s", diff)
	}
	if got := (Config{Concurrency: 3}).withDefaults().Prefetch; got != 6 {
		t.Errorf("Prefetch with Concurrency 3 = %d, want 6", got)
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Quality: 101}, "Config.Quality"},
		{Config{Prefetch: -1}, "Config.Prefetch"},
		{Config{MaxDownloadBytes: -1}, "Config.MaxDownloadBytes"},
		{Config{DrainTimeout: -time.Second}, "Config.DrainTimeout"},
	} {
		err := tc.cfg.withDefaults().validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}
