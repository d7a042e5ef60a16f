package config_test

import (
	"strings"
	"testing"

	"github.com/productd/productd/config"
)

func TestMaxConcurrentUploads(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]int{"": 8, "3": 3} {
		c, err := config.FromLookup(lookup(map[string]string{"MAX_CONCURRENT_UPLOADS": value}))
		if err != nil || c.MaxConcurrentUploads != want {
			t.Errorf("MAX_CONCURRENT_UPLOADS=%q: %d %v, want %d", value, c.MaxConcurrentUploads, err, want)
		}
	}
	for _, bad := range []string{"0", "-1", "many"} {
		_, err := config.FromLookup(lookup(map[string]string{"MAX_CONCURRENT_UPLOADS": bad}))
		if err == nil || !strings.HasPrefix(err.Error(), "config: MAX_CONCURRENT_UPLOADS=") {
			t.Errorf("MAX_CONCURRENT_UPLOADS=%q: %v, want an error naming it", bad, err)
		}
	}
}
