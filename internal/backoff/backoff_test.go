package backoff_test

import (
	"context"
	"testing"
	"time"

	"github.com/productd/productd/internal/backoff"
)

func TestExponentialGrowsWithinBoundsUpToTheCap(t *testing.T) {
	t.Parallel()
	base, max := 100*time.Millisecond, 2*time.Second
	for attempt := 1; attempt <= 70; attempt++ {
		want := max
		if attempt <= 5 {
			want = base << (attempt - 1)
		}
		for range 200 {
			got := backoff.Exponential(attempt, base, max)
			if got < want/2 || got > want {
				t.Fatalf("attempt %d: wait %v outside [%v, %v]", attempt, got, want/2, want)
			}
		}
	}
}

func TestExponentialNeverShrinksBelowTheCap(t *testing.T) {
	t.Parallel()
	for range 500 {
		prev := time.Duration(0)
		// 2^9 s is the last doubling under the 10 minute cap.
		for attempt := 1; attempt <= 10; attempt++ {
			got := backoff.Exponential(attempt, time.Second, 10*time.Minute)
			if got < prev {
				t.Fatalf("attempt %d waits %v, less than the previous %v", attempt, got, prev)
			}
			prev = got
		}
	}
}

func TestExponentialJitters(t *testing.T) {
	t.Parallel()
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[backoff.Exponential(3, time.Second, time.Minute)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("100 waits took only %d distinct values; want jitter", len(seen))
	}
}

func TestExponentialDegenerateInputs(t *testing.T) {
	t.Parallel()
	if got := backoff.Exponential(3, 0, time.Second); got != 0 {
		t.Errorf("zero base: got %v, want 0", got)
	}
	if got := backoff.Exponential(0, time.Second, time.Second); got < time.Second/2 || got > time.Second {
		t.Errorf("attempt 0 is taken as the first: got %v", got)
	}
}

func TestSleepStopsWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	if !backoff.Sleep(context.Background(), time.Millisecond) {
		t.Error("a wait that ran out reported the context's end")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// An hour-long wait returns at once for an ended context: were it to
	// wait, the test would hit its deadline.
	if backoff.Sleep(ctx, time.Hour) {
		t.Error("a wait cut short by the context reported that it ran out")
	}
}
