package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/productd/productd/cache"
	"github.com/productd/productd/internal/sandbox"
	"github.com/productd/productd/logging"
)

// TestRedisRestart kills a private Redis for real, as a crash would, and
// starts it again empty: reads answer from Postgres throughout, a write
// during the outage succeeds, and afterwards both instances read the write
// and use Redis again. The Redis is the test's own (internal/sandbox), so
// the shared one is never touched.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := sandbox.Open("", logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dir.Close() })
	r, err := dir.StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	a, _ := f.open(r.URL(), withLocal)
	b, _ := f.open(r.URL(), withLocal)
	p := f.create()
	localHit(t, a, p.ID)
	localHit(t, b, p.ID)

	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
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

	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
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
