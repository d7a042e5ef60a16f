package ops

import "github.com/productd/productd/cache"

// Cache is this process's read cache: every process has its own counters,
// so the figures are those of the process serving the page.
type Cache struct {
	// Available is false when this process runs no cache.
	Available bool `json:"available"`
	// HitRatio is the share of reads answered by Redis or the in-process
	// tier since the process started; zero before the first read.
	HitRatio  float64 `json:"hit_ratio"`
	LocalHits uint64  `json:"local_hits"`
	Hits      uint64  `json:"hits"`
	Misses    uint64  `json:"misses"`
	Fallbacks uint64  `json:"fallbacks"`
	// Breaker is "closed" while reads go through Redis, "open" while they
	// go to Postgres.
	Breaker           string `json:"breaker"`
	BreakerOpens      uint64 `json:"breaker_opens"`
	Generation        int64  `json:"generation"`
	LocalSize         int    `json:"local_size"`
	Invalidations     uint64 `json:"invalidations"`
	InvalidationsLost uint64 `json:"invalidations_lost"`
}

// Cache returns this process's cache counters.
func (c *Console) Cache() Cache {
	if c.cfg.Cache == nil {
		return Cache{}
	}
	return cacheOf(c.cfg.Cache())
}

func cacheOf(s cache.Stats) Cache {
	out := Cache{
		Available: true, LocalHits: s.LocalHits, Hits: s.Hits, Misses: s.Misses, Fallbacks: s.Fallbacks,
		Breaker: string(s.Breaker), BreakerOpens: s.BreakerOpens, Generation: s.Generation, LocalSize: s.LocalSize,
		Invalidations: s.Invalidations, InvalidationsLost: s.InvalidationsLost,
	}
	if reads := s.LocalHits + s.Hits + s.Misses + s.Fallbacks; reads > 0 {
		out.HitRatio = float64(s.LocalHits+s.Hits) / float64(reads)
	}
	return out
}
