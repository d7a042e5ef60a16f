// Package failtest runs a test helper that is meant to fail, and returns
// what it failed with, so that the refusals of the helpers in internal/*test
// (a service that does not answer, a setting that cannot work) can be
// tested without failing the test that checks them.
package failtest

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB whose failures are recorded instead of
// reported; Fatal and Fatalf end the goroutine, as testing's do. Everything
// else, clean-ups and logs included, goes to the test it wraps.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) { r.record(fmt.Sprintf(format, args...)) }

func (r *recorder) Error(args ...any) { r.record(fmt.Sprint(args...)) }

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) {
	r.Error(args...)
	runtime.Goexit()
}

func (r *recorder) record(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg)
}

// Failures runs fn on a goroutine of its own with a testing.TB that wraps t
// and records fn's failures, and returns their messages, one a line: empty
// when fn did not fail. A Fatal ends fn there. Clean-ups fn registers run
// when t ends.
func Failures(t testing.TB, fn func(testing.TB)) string {
	t.Helper()
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(rec)
	}()
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return strings.Join(rec.msgs, "\n")
}
