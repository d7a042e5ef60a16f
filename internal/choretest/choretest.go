// Package choretest runs a chores.Scheduler for the length of a test.
package choretest

import (
	"context"
	"testing"

	"github.com/productd/productd/chores"
)

// Run runs s until t ends; its River client works the registered chores,
// each on start first. Run's error, if any, fails t.
func Run(t testing.TB, s *chores.Scheduler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run the chores: %v", err)
		}
	})
}
