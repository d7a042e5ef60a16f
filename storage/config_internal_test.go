package storage

import (
	"strings"
	"testing"
	"time"
)

func TestNewRefusesWhatCannotWork(t *testing.T) {
	t.Parallel()
	ok := Config{Endpoint: "127.0.0.1:9000", Bucket: "b", PublicURL: "http://127.0.0.1:9000/b"}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Endpoint = "" }, "Config.Endpoint"},
		{func(c *Config) { c.PublicURL = "" }, "Config.PublicURL"},
		{func(c *Config) { c.MaxRetries = -1 }, "Config.MaxRetries"},
		{func(c *Config) { c.Timeout = -time.Second }, "Config.Timeout"},
	} {
		cfg := ok
		tc.edit(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", cfg, err, tc.want)
		}
	}
	if c := ok.withDefaults(); c.MaxRetries != DefaultMaxRetries || c.Timeout != DefaultTimeout {
		t.Errorf("defaults: MaxRetries %d, Timeout %s", c.MaxRetries, c.Timeout)
	}
}
