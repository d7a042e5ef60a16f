package exampletest

import (
	"slices"
	"testing"
)

func TestCleanUpsRunInReverseOnceAndFailuresAreKept(t *testing.T) {
	t.Parallel()
	var tb TB
	var order []int
	for i := range 3 {
		tb.Cleanup(func() { order = append(order, i) })
	}
	tb.cleanUp()
	tb.cleanUp()
	if want := []int{2, 1, 0}; !slices.Equal(order, want) {
		t.Errorf("clean-ups ran as %v, want %v", order, want)
	}
	tb.Errorf("a %s failed", "clean-up")
	if !tb.failed {
		t.Error("Errorf did not record a failure")
	}
}
