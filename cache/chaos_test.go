//go:build chaos

package cache_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/productd/productd/cache"
	"github.com/productd/productd/internal/redistest"
)

// TestChaosRedisRestart stops the shared Redis for real (SHUTDOWN NOSAVE,
// as a crash would) and starts it again empty through scripts/services:
// reads answer from Postgres throughout, a write during the outage succeeds,
// and afterwards both instances read the write and use Redis again.
//
// It takes Redis away from every other test on the machine: run it alone,
// through `make chaos`.
func TestChaosRedisRestart(t *testing.T) {
	f := newFixture(t)
	a, _ := f.open(redistest.URL(), withLocal)
	b, _ := f.open(redistest.URL(), withLocal)
	p := f.create()
	localHit(t, a, p.ID)
	localHit(t, b, p.ID)

	admin := redistest.Client(t)
	// SHUTDOWN closes the connection without a reply.
	_ = admin.Do(context.Background(), "SHUTDOWN", "NOSAVE").Err()
	t.Cleanup(func() { startRedis(t) }) // whatever happens, give Redis back
	eventually(t, "both breakers to open", func() bool {
		return a.BreakerState() == cache.BreakerOpen && b.BreakerState() == cache.BreakerOpen
	})

	for range 10 {
		if got := find(t, b, p.ID); got.Name != "lamp" {
			t.Fatalf("during the outage read %q", got.Name)
		}
	}
	rename(t, a, p.ID, "renamed")
	if got := find(t, b, p.ID); got.Name != "renamed" {
		t.Fatalf("during the outage the other instance read %q after the write, want %q", got.Name, "renamed")
	}

	startRedis(t)
	eventually(t, "both breakers to close", func() bool {
		return a.BreakerState() == cache.BreakerClosed && b.BreakerState() == cache.BreakerClosed
	})
	for _, c := range []*cache.ProductService{a, b} {
		if got := find(t, c, p.ID); got.Name != "renamed" {
			t.Fatalf("after the restart read %q, want %q", got.Name, "renamed")
		}
	}
	localHit(t, b, p.ID)
	rename(t, a, p.ID, "renamed again")
	if got := find(t, b, p.ID); got.Name != "renamed again" {
		t.Fatalf("after the restart the other instance read %q after a write, want %q", got.Name, "renamed again")
	}
}

// startRedis starts Redis through scripts/services (a no-op when it answers)
// and waits until it does.
func startRedis(t *testing.T) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "scripts", "services"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, script, "up").CombinedOutput(); err != nil {
		t.Fatalf("scripts/services up: %v\n%s", err, out)
	}
	admin := redistest.Client(t)
	eventually(t, "redis to answer", func() bool { return admin.Ping(context.Background()).Err() == nil })
}
