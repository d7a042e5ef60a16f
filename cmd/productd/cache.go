package main

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/productd/productd/cache"
)

// setupCache wraps a.products with the Redis cache, so that every role reads
// through it and every write (the API's, the image worker's, the chores')
// invalidates it; with local, the process keeps an in-process tier too. A
// Redis that does not answer is no reason to stop: the cache starts
// degraded, reading from Postgres, and uses Redis once it answers. Its
// background work ends with ctx.
func setupCache(ctx context.Context, a *app, local bool) error {
	redis.SetLogger(cache.RedisLogger{Log: a.log})
	client, err := cache.NewClient(a.cfg.RedisURL, cache.DefaultTimeout)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	c, err := cache.Open(ctx, a.products, cache.Config{Client: client, Log: a.log, Prefix: a.cfg.CachePrefix, Local: local})
	if err != nil {
		return fmt.Errorf("open cache: %w", err)
	}
	a.products = c
	a.tel.Cache(c.Stats)
	// Optional: while Redis is away the cache reads from Postgres, and an
	// unready instance would lose its traffic for what only costs speed.
	a.checks.AddOptional("redis", func(ctx context.Context) error { return client.Ping(ctx).Err() })
	return nil
}
