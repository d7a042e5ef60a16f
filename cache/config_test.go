package cache

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	got := Config{}.withDefaults()
	want := Config{
		Prefix:           DefaultPrefix,
		TTL:              DefaultTTL,
		Timeout:          DefaultTimeout,
		LoadTimeout:      DefaultLoadTimeout,
		FailureThreshold: DefaultFailureThreshold,
		ProbeInterval:    DefaultProbeInterval,
		LocalTTL:         DefaultLocalTTL,
		LocalSize:        DefaultLocalSize,
		LeaseTTL:         DefaultLeaseTTL,
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Config{}, "Log")); diff != "" {
		t.Errorf("Config{}.withDefaults() (-want +got):\n%s", diff)
	}
	if got.Log == nil {
		t.Error("Config{}.withDefaults() left Log nil")
	}
	set := Config{Prefix: "p:", TTL: time.Hour, LocalSize: 1}
	if diff := cmp.Diff(set, set.withDefaults(), cmpopts.IgnoreFields(Config{}, "Log", "Timeout", "LoadTimeout", "FailureThreshold", "ProbeInterval", "LocalTTL", "LeaseTTL")); diff != "" {
		t.Errorf("withDefaults changed fields that were set (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	client := redis.NewClient(&redis.Options{})
	defer client.Close()
	for _, tc := range []struct {
		cfg  Config
		want string // in the error; empty for none
	}{
		{Config{}, "Client"},
		{Config{Client: client}, ""},
		{Config{Client: client, TTL: time.Second}, "half the TTL"},
		{Config{Client: client, Timeout: -time.Second}, "Config.Timeout"},
		{Config{Client: client, LocalSize: -1}, "Config.LocalSize"},
		{Config{Client: client, FailureThreshold: -1}, "Config.FailureThreshold"},
	} {
		err := tc.cfg.withDefaults().validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v, want no error", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: err = %v, want one naming %s", tc.cfg, err, tc.want)
		}
	}
	if _, err := NewClient("http://nope", time.Second); err == nil {
		t.Fatal("NewClient accepted a non-redis URL")
	}
}
