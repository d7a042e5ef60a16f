package cache_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/productd/productd/cache"
	"github.com/productd/productd/internal/redistest"
)

// A scan reads a cache of any size a batch at a time and skips what is not
// a product's entry; a reader that meets a value it cannot read under a
// product's key gets the product from the database.
func TestScanInBatchesSkippingWhatIsNotAnEntry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	c, client := f.open(redistest.URL(), nil)
	p, garbled := f.create(), f.create()
	find(t, c, p.ID)
	keys, err := client.Keys(ctx, f.prefix+"p:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys of one cached product: %v (%v)", keys, err)
	}
	keyPrefix := strings.TrimSuffix(keys[0], strconv.FormatInt(p.ID, 10))
	raw, err := client.Get(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	// The entry of p copied under other ids, as if they had been read.
	const copies = 1200
	pipe := client.Pipeline()
	for i := range copies {
		pipe.Set(ctx, keyPrefix+strconv.Itoa(1_000_000+i), raw, 0)
	}
	pipe.Set(ctx, keyPrefix+"not-an-id", raw, 0)
	pipe.Set(ctx, keyPrefix+strconv.FormatInt(garbled.ID, 10), "not an entry", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}

	seen := map[int64]bool{}
	err = cache.ScanCached(ctx, client, f.prefix, func(batch []cache.Cached) error {
		if len(batch) > 500 {
			t.Errorf("a batch of %d products, want at most 500", len(batch))
		}
		for _, got := range batch {
			seen[got.ID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != copies+1 || !seen[p.ID] || seen[garbled.ID] {
		t.Errorf("the scan saw %d products (p: %v, the unreadable one: %v), want %d with p and without it",
			len(seen), seen[p.ID], seen[garbled.ID], copies+1)
	}
	if _, ok, err := cache.ReadCached(ctx, client, f.prefix, garbled.ID); ok || err != nil {
		t.Errorf("ReadCached of an unreadable value: %v, %v; want not cached", ok, err)
	}
	before := f.inner.finds.Load()
	if got := find(t, c, garbled.ID); got.ID != garbled.ID || got.Name != garbled.Name {
		t.Errorf("read over an unreadable value: %+v, want %+v", got, garbled)
	}
	if f.inner.finds.Load() != before+1 {
		t.Errorf("read over an unreadable value: %d database reads, want 1", f.inner.finds.Load()-before)
	}
}
