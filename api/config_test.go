package api

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/productd/productd/logging"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	want := Config{
		MaxBodyBytes:         DefaultMaxBodyBytes,
		MaxUploadBytes:       DefaultMaxUploadBytes,
		MaxConcurrentUploads: DefaultMaxConcurrentUploads,
		ReadyTimeout:         DefaultReadyTimeout,
		QueryTimeout:         DefaultQueryTimeout,
	}
	if diff := cmp.Diff(want, Config{}.withDefaults()); diff != "" {
		t.Errorf("Config{}.withDefaults() (-want +got):\n%s", diff)
	}
}

func TestNewServerRefusesWhatCannotWork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Config.Log"},
		{Config{Log: logging.Discard(), MaxConcurrentUploads: -1}, "Config.MaxConcurrentUploads"},
		{Config{Log: logging.Discard(), QueryTimeout: -time.Second}, "Config.QueryTimeout"},
	} {
		func() {
			defer func() {
				err, _ := recover().(error)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("NewServer(%+v) panicked with %v, want an error naming %s", tc.cfg, err, tc.want)
				}
			}()
			NewServer(tc.cfg)
		}()
	}
}
