package failtest_test

import (
	"testing"

	"github.com/productd/productd/internal/failtest"
)

func TestFailuresAreRecordedNotReported(t *testing.T) {
	t.Parallel()
	after := false
	got := failtest.Failures(t, func(tb testing.TB) {
		tb.Helper()
		tb.Error("first")
		tb.Errorf("second %d", 2)
		tb.Fatal("third")
		after = true
	})
	if got != "first\nsecond 2\nthird" || after {
		t.Errorf("recorded %q, ran on after Fatal: %v; want the three messages and a stop", got, after)
	}
	if got := failtest.Failures(t, func(tb testing.TB) { tb.Fatalf("stop %s", "here") }); got != "stop here" {
		t.Errorf("Fatalf recorded %q", got)
	}
	if got := failtest.Failures(t, func(tb testing.TB) { tb.Logf("a log line is no failure") }); got != "" {
		t.Errorf("a helper that did not fail recorded %q", got)
	}
}
