package cache_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/productd/productd/cache"
	"github.com/productd/productd/internal/redistest"
)

// Two instances of the cache, each with its own Redis client and background
// work, on one prefix and one database, stand in for two productd
// processes: they share nothing but Redis and Postgres, as processes do.

// localHit reads through c until the in-process tier answers.
func localHit(t *testing.T, c *cache.ProductService, id int64) {
	t.Helper()
	before := c.Stats().LocalHits
	eventually(t, "a hit of the in-process tier", func() bool {
		find(t, c, id)
		return c.Stats().LocalHits > before
	})
}

// TestLocalTierInvalidatedAcrossInstances: a write through one instance is
// seen by the other's very next read, although that one had the product in
// memory.
func TestLocalTierInvalidatedAcrossInstances(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, _ := f.open(redistest.URL(), withLocal)
	b, _ := f.open(redistest.URL(), withLocal)
	p := f.create()

	for i := range 10 {
		writer, reader := a, b
		if i%2 == 1 {
			writer, reader = b, a
		}
		localHit(t, reader, p.ID)
		localHit(t, writer, p.ID)
		name := fmt.Sprintf("lamp %d", i)
		rename(t, writer, p.ID, name)
		if got := find(t, reader, p.ID); got.Name != name {
			t.Fatalf("round %d: the other instance read %q after the write, want %q", i, got.Name, name)
		}
		if got := find(t, writer, p.ID); got.Name != name {
			t.Fatalf("round %d: the writer read %q after its write, want %q", i, got.Name, name)
		}
	}

	// A closed instance leaves the registry, so writers stop waiting for it.
	admin := redistest.Client(t)
	if n := admin.ZCard(context.Background(), f.prefix+"tiers").Val(); n != 2 {
		t.Fatalf("registry holds %d tiers, want 2", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := admin.ZCard(context.Background(), f.prefix+"tiers").Val(); n != 1 {
		t.Fatalf("registry holds %d tiers after Close, want 1", n)
	}
}

// TestLocalTierOfAnUnreachableInstance: the other instance holds the product
// in memory when its path to Redis dies. The writer cannot tell it; the
// writer's answer must still come only once that instance can no longer
// answer with the old value.
func TestLocalTierOfAnUnreachableInstance(t *testing.T) {
	t.Parallel()
	for _, fault := range []string{"blackhole", "cut"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			proxy := redistest.NewProxy(t)
			writer, _ := f.open(redistest.URL(), withLocal)
			reader, _ := f.open(proxy.URL(), withLocal)
			p := f.create()
			localHit(t, reader, p.ID)

			switch fault {
			case "blackhole": // the connection stays open; nothing comes back
				proxy.Blackhole("dead")
			case "cut": // the connections close; Redis sees the subscriber go
				proxy.Cut()
			}
			rename(t, writer, p.ID, "renamed")
			if got := find(t, reader, p.ID); got.Name != "renamed" {
				t.Fatalf("the unreachable instance read %q after the write was answered, want %q", got.Name, "renamed")
			}
		})
	}
}
