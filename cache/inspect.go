package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Cached is a product as Redis holds it for the cache.
type Cached struct {
	ID            int64
	Version       int64
	ImagesVersion int64
	// JSON is the product as the API sends it.
	JSON []byte
}

// scanBatch is how many keys ScanCached asks Redis for at a time.
const scanBatch = 500

// ScanCached calls fn with the products that Redis holds for the cache with
// prefix in its current generation, a batch at a time, so that a large
// cache is never read whole. Tombstones are skipped. A product may come
// twice (SCAN's guarantee); one stored or removed during the scan may or may
// not come. It is for audits: readers go through ProductService.
func ScanCached(ctx context.Context, client *redis.Client, prefix string, fn func([]Cached) error) error {
	gen, err := generation(ctx, client, prefix)
	if err != nil {
		return err
	}
	keyPrefix := prefix + "p:" + strconv.FormatInt(gen, 10) + ":"
	iter := client.Scan(ctx, 0, globEscaper.Replace(keyPrefix)+"*", scanBatch).Iterator()
	keys := make([]string, 0, scanBatch)
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		values, err := client.MGet(ctx, keys...).Result()
		if err != nil {
			return fmt.Errorf("read %d cached products: %w", len(keys), err)
		}
		batch := make([]Cached, 0, len(keys))
		for i, v := range values {
			if c, ok := cachedValue(keys[i], keyPrefix, v); ok {
				batch = append(batch, c)
			}
		}
		keys = keys[:0]
		if len(batch) == 0 {
			return nil
		}
		return fn(batch)
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == scanBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan cached products: %w", err)
	}
	return flush()
}

// ReadCached returns product id as Redis holds it now for the cache with
// prefix, and false when it holds no value for it (nothing, or a
// tombstone).
func ReadCached(ctx context.Context, client *redis.Client, prefix string, id int64) (Cached, bool, error) {
	gen, err := generation(ctx, client, prefix)
	if err != nil {
		return Cached{}, false, err
	}
	key := keyOf(prefix+"p:", gen, id)
	raw, err := client.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return Cached{}, false, nil
	} else if err != nil {
		return Cached{}, false, fmt.Errorf("read cached product %d: %w", id, err)
	}
	c, ok := cachedValue(key, strings.TrimSuffix(key, strconv.FormatInt(id, 10)), raw)
	return c, ok, nil
}

// generation reads the cache's current key generation.
func generation(ctx context.Context, client *redis.Client, prefix string) (int64, error) {
	raw, err := client.Get(ctx, prefix+"gen").Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil // as the scripts read a missing key
	} else if err != nil {
		return 0, fmt.Errorf("read the cache generation: %w", err)
	}
	gen, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read the cache generation %q: %w", raw, err)
	}
	return gen, nil
}

// cachedValue decodes the value v of key, which starts with keyPrefix.
func cachedValue(key, keyPrefix string, v any) (Cached, bool) {
	raw, ok := v.(string)
	if !ok {
		return Cached{}, false // gone between SCAN and MGET
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(key, keyPrefix), 10, 64)
	if err != nil {
		return Cached{}, false
	}
	e, err := decodeEntry([]byte(raw))
	if err != nil {
		return Cached{}, false // a tombstone, or not ours
	}
	return Cached{ID: id, Version: e.version, ImagesVersion: e.imagesVersion, JSON: e.json}, true
}

// globEscaper escapes what SCAN's MATCH pattern would read as a wildcard.
var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
