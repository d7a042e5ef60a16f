// Package backoff computes exponentially growing waits with jitter, for
// retrying anything that failed (a connection, a publication), and waits
// them out unless the caller's context ends first.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Exponential returns the wait before retry number attempt (1 for the first
// retry): base doubled attempt-1 times, capped at max, of which the upper
// half is random ("equal jitter"). The result lies in [d/2, d] for that
// capped d: below the cap a wait is never shorter than the one before, and
// processes that failed together spread out instead of retrying in step.
func Exponential(attempt int, base, max time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	if attempt < 1 {
		attempt = 1
	}
	d := max
	// Doubling past max (or past the int64 range) is pointless: stop early.
	if shift := attempt - 1; shift < 62 && base <= max>>shift {
		d = base << shift
	}
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep waits for d, or until ctx ends, and reports whether the whole wait
// passed: false means ctx ended and the caller should stop retrying.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
