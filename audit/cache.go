package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/productd/productd"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/db"
)

// staleCache compares every product cached in Redis with the database: a
// reader served from the cache must get what the database holds. A
// difference is checked again after RecheckAfter, since a write may have
// committed between the two reads and not yet invalidated; it is reported
// only when the same cached value still differs.
func (a *auditor) staleCache(ctx context.Context, results ...*Result) error {
	res := results[0]
	products := db.NewProductService(a.cfg.DB)
	var suspects []cache.Cached
	err := cache.ScanCached(ctx, a.cfg.Redis, a.cfg.CachePrefix, func(batch []cache.Cached) error {
		res.checked(int64(len(batch)))
		differ, err := a.differing(ctx, products, batch)
		suspects = append(suspects, differ...)
		return err
	})
	if err != nil || len(suspects) == 0 {
		return err
	}
	select {
	case <-time.After(a.cfg.RecheckAfter):
	case <-ctx.Done():
		return ctx.Err()
	}
	var again []cache.Cached
	for _, s := range suspects {
		now, ok, err := cache.ReadCached(ctx, a.cfg.Redis, a.cfg.CachePrefix, s.ID)
		if err != nil {
			return err
		}
		if ok && bytes.Equal(now.JSON, s.JSON) {
			again = append(again, now)
		}
	}
	stale, err := a.differing(ctx, products, again)
	if err != nil {
		return err
	}
	found := make(map[int64]*productd.Product, len(stale))
	if len(stale) > 0 {
		ids := make([]int64, len(stale))
		for i, s := range stale {
			ids[i] = s.ID
		}
		current, err := products.FindProductsByIDs(ctx, ids)
		if err != nil {
			return err
		}
		for _, p := range current {
			found[p.ID] = p
		}
	}
	for _, s := range stale {
		detail := fmt.Sprintf("cached at version %d, deleted from the database", s.Version)
		if p := found[s.ID]; p != nil {
			detail = fmt.Sprintf("cached at version %d (%s), the database holds version %d (%s)", s.Version, statusOf(s.JSON), p.Version, p.ImageStatus)
		}
		res.violation(fmt.Sprintf("product %d", s.ID), detail)
	}
	return nil
}

// differing returns the cached products that are not what the database
// holds: absent, or encoded otherwise than the database's row encodes.
func (a *auditor) differing(ctx context.Context, products *db.ProductService, batch []cache.Cached) ([]cache.Cached, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(batch))
	for i, c := range batch {
		ids[i] = c.ID
	}
	current, err := products.FindProductsByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	want := make(map[int64][]byte, len(current))
	for _, p := range current {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode product %d: %w", p.ID, err)
		}
		want[p.ID] = b
	}
	var differ []cache.Cached
	for _, c := range batch {
		if w, ok := want[c.ID]; !ok || !bytes.Equal(w, c.JSON) {
			differ = append(differ, c)
		}
	}
	return differ, nil
}

// statusOf reads the image status of a product's JSON, for a finding.
func statusOf(b []byte) string {
	var p struct {
		Status string `json:"image_status"`
	}
	_ = json.Unmarshal(b, &p)
	return p.Status
}
