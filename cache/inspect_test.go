package cache_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/productd/productd/cache"
	"github.com/productd/productd/internal/redistest"
)

func TestScanCachedReadsWhatReadersWouldGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	c, client := f.open(redistest.URL(), nil)
	if err := cache.ScanCached(ctx, client, f.prefix, func([]cache.Cached) error {
		t.Error("an empty cache holds products")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for range 3 {
		p := f.create()
		find(t, c, p.ID) // fills the cache
		ids = append(ids, p.ID)
	}
	renamed := rename(t, c, ids[1], "renamed") // a tombstone now

	seen := map[int64]cache.Cached{}
	err := cache.ScanCached(ctx, client, f.prefix, func(batch []cache.Cached) error {
		for _, got := range batch {
			seen[got.ID] = got
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 {
		t.Fatalf("scan found %d products, want the 2 not invalidated: %+v", len(seen), seen)
	}
	for _, id := range []int64{ids[0], ids[2]} {
		want, err := json.Marshal(find(t, f.inner.ProductService, id))
		if err != nil {
			t.Fatal(err)
		}
		if got := seen[id]; string(got.JSON) != string(want) || got.Version != 1 {
			t.Errorf("product %d cached as %s (version %d), want %s", id, got.JSON, got.Version, want)
		}
		one, ok, err := cache.ReadCached(ctx, client, f.prefix, id)
		if err != nil || !ok || string(one.JSON) != string(want) {
			t.Errorf("ReadCached(%d) = %s, %v, %v", id, one.JSON, ok, err)
		}
	}
	if _, ok, err := cache.ReadCached(ctx, client, f.prefix, renamed.ID); ok || err != nil {
		t.Errorf("an invalidated product reads as cached: %v %v", ok, err)
	}
	find(t, c, renamed.ID)
	if got, ok, _ := cache.ReadCached(ctx, client, f.prefix, renamed.ID); !ok || got.Version != renamed.Version {
		t.Errorf("after a read the renamed product is cached at version %d (%v), want %d", got.Version, ok, renamed.Version)
	}

	// Stopping at fn's error, and Redis errors, reach the caller.
	stop := context.Canceled
	if err := cache.ScanCached(ctx, client, f.prefix, func([]cache.Cached) error { return stop }); err != stop {
		t.Errorf("fn's error: got %v", err)
	}
	if err := client.Set(ctx, f.prefix+"gen", "not a number", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cache.ScanCached(ctx, client, f.prefix, func([]cache.Cached) error { return nil }); err == nil {
		t.Error("a garbled generation went unnoticed")
	}
	_ = client.Close()
	if _, _, err := cache.ReadCached(ctx, client, f.prefix, ids[0]); err == nil {
		t.Error("ReadCached on a closed client succeeded")
	}
}
