package cache

import "sync/atomic"

// Stats counts what the cache did since it was opened; the ops console shows
// them. Counters only grow, so that a reader can take rates from the
// difference of two readings.
type Stats struct {
	// LocalHits are reads answered by the in-process tier.
	LocalHits uint64
	// Hits are reads answered by Redis.
	Hits uint64
	// Misses are reads Redis answered without a value (nothing stored, or a
	// tombstone); each is served by a load from the inner service, which
	// concurrent misses share.
	Misses uint64
	// Fills are loaded products stored in Redis; FillsRefused were not,
	// because a writer invalidated the product (or a newer version arrived,
	// or the generation moved on) while they loaded.
	Fills        uint64
	FillsRefused uint64
	// Invalidations are writes the cache invalidated after; of them,
	// InvalidationsLost could not reach Redis.
	Invalidations     uint64
	InvalidationsLost uint64
	// Fallbacks are reads served by the inner service because Redis could
	// not be asked (breaker open) or did not answer in time.
	Fallbacks uint64
	// BreakerOpens counts the breaker's transitions to open.
	BreakerOpens uint64

	// Breaker is the breaker's state now.
	Breaker BreakerState
	// Generation is the generation of product keys in use, -1 before Redis
	// first answered.
	Generation int64
	// LocalSize is the number of products the in-process tier holds now.
	LocalSize int
}

type counters struct {
	localHits, hits, misses, fills, fillsRefused atomic.Uint64
	invalidations, invalidationsLost, fallbacks  atomic.Uint64
}

// Stats returns the counters and state of the cache.
func (s *ProductService) Stats() Stats {
	st := Stats{
		LocalHits:         s.stats.localHits.Load(),
		Hits:              s.stats.hits.Load(),
		Misses:            s.stats.misses.Load(),
		Fills:             s.stats.fills.Load(),
		FillsRefused:      s.stats.fillsRefused.Load(),
		Invalidations:     s.stats.invalidations.Load(),
		InvalidationsLost: s.stats.invalidationsLost.Load(),
		Fallbacks:         s.stats.fallbacks.Load(),
		BreakerOpens:      s.breaker.opens.Load(),
		Breaker:           s.breaker.state(),
		Generation:        s.gen.Load(),
	}
	if s.local != nil {
		st.LocalSize = s.local.len()
	}
	return st
}
