// Package exampletest lets a package's runnable examples use the helpers
// that take a testing.TB (dbtest, redistest, amqptest): an example gets no
// *testing.T, so the package's TestMain keeps a TB whose clean-ups run once
// every test and example has.
//
//	var ex exampletest.TB
//
//	func TestMain(m *testing.M) { os.Exit(ex.Run(m)) }
//
//	func Example() {
//		pool := dbtest.NewPool(&ex)
//		...
//	}
package exampletest

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
)

// TB is the testing.TB of a package's examples. Its zero value is ready.
// It has the methods the test helpers call; any other one panics, its
// embedded TB being nil.
type TB struct {
	testing.TB

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// Helper does nothing: there is no test to report a line of.
func (t *TB) Helper() {}

// Name names what the helpers label their resources with.
func (t *TB) Name() string { return "Example" }

// Cleanup registers f to run when Run's tests and examples are over, in the
// reverse order of registration.
func (t *TB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// Logf writes to standard error, out of the examples' output.
func (t *TB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// Errorf reports a failure on standard error; Run then exits non-zero.
func (t *TB) Errorf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	t.Logf(format, args...)
}

// Fatalf reports a failure and ends the test binary after the clean-ups:
// an example cannot be stopped on its own, it runs on the main goroutine.
func (t *TB) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	t.cleanUp()
	os.Exit(1)
}

// Fatal is Fatalf with the arguments printed as by fmt.Sprint.
func (t *TB) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }

// Run runs m's tests and examples, then the clean-ups, and returns the exit
// code for os.Exit: m's, or 1 when a clean-up failed.
func (t *TB) Run(m *testing.M) int {
	code := m.Run()
	t.cleanUp()
	t.mu.Lock()
	defer t.mu.Unlock()
	if code == 0 && t.failed {
		code = 1
	}
	return code
}

func (t *TB) cleanUp() {
	t.mu.Lock()
	fs := slices.Clone(t.cleanups)
	t.cleanups = nil
	t.mu.Unlock()
	for _, f := range slices.Backward(fs) {
		f()
	}
}
