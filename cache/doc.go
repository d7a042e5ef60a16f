// Package cache is a Redis cache-aside for product reads: a
// productd.ProductService that wraps another (the database one) and that
// never serves a product older than a write whose response has been sent,
// and never stops reads when Redis goes away.
//
// # Reads
//
// FindProductByID looks in an optional in-process tier, then in Redis, then
// loads from the inner service. Concurrent misses of one product share a
// single load (see flights for who may share), and the load stores the
// product in Redis with a TTL through a script that refuses it when a writer
// invalidated the product meanwhile (see fill). FindProducts is not cached.
//
// # Writes
//
// UpdateProduct, DeleteProduct and SetImageResult call the inner service and
// then, before returning, invalidate: the product's value is replaced by a
// tombstone with a fresh token, and every instance that keeps an in-process
// tier is told to drop the product and acknowledges it. An invalidation that
// cannot reach Redis does not fail the write.
//
// # Redis away
//
// Every Redis call a read makes is bounded by Config.Timeout. After
// Config.FailureThreshold failures in a row, or at once when the
// subscription drops or an invalidation is lost, a breaker opens: reads go
// to the inner service without trying Redis, and a background probe tries
// Redis every Config.ProbeInterval. Before the breaker closes the instance
// settles the key generation: unless another instance has already done so,
// it moves to a new generation, which makes every value written before the
// outage unreachable, since any of them may have missed an invalidation
// that failed during the outage.
//
// # The in-process tier
//
// With Config.Local, products read from Redis are kept in memory for
// Config.LocalTTL. The tier answers only while it holds a lease, renewed in
// Redis while the instance's subscription is live; a writer waits until
// every registered tier has acknowledged the invalidation, or until its
// lease has run out, before it answers its client. See localTier.
//
// # What it needs from Redis
//
// One Redis (the scripts build keys from the generation they read, so they
// cannot run on a cluster that spreads keys by slot), with an eviction policy
// that does not evict the cache's keys early (noeviction, or enough memory):
// an evicted tombstone would let a slow reader store an old value, which the
// TTL would then bound.
package cache
