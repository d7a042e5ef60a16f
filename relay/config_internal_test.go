package relay

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	want := Config{
		BatchSize:          DefaultBatchSize,
		Concurrency:        DefaultConcurrency,
		MaxAttempts:        DefaultMaxAttempts,
		RetryBase:          DefaultRetryBase,
		RetryMax:           DefaultRetryMax,
		ConfirmTimeout:     DefaultConfirmTimeout,
		SweepInterval:      DefaultSweepInterval,
		PollInterval:       DefaultPollInterval,
		RetentionInterval:  DefaultRetentionInterval,
		PublishedRetention: DefaultPublishedRetention,
		RetentionBatch:     DefaultRetentionBatch,
		StatusInterval:     DefaultStatusInterval,
		StopTimeout:        DefaultStopTimeout,
		MarkTimeout:        DefaultMarkTimeout,
		Observer:           nopObserver{},
	}
	if diff := cmp.Diff(want, Config{}.withDefaults()); diff != "" {
		t.Errorf("Config{}.withDefaults() (-want +got):\n%s", diff)
	}
	if err := (Config{RetryMax: time.Millisecond}).withDefaults().validate(); err != nil {
		t.Errorf("a RetryMax under RetryBase refused: %v", err)
	}
}
