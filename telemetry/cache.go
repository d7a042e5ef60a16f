package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/productd/productd/cache"
)

// Cache registers the read cache's families, read from stats (the cache's
// ProductService.Stats) at each scrape: its counters are atomics, so a
// scrape costs nothing.
func (t *Telemetry) Cache(stats func() cache.Stats) {
	t.register(&cacheCollector{
		stats: stats,
		hits: prometheus.NewDesc("productd_cache_hits_total",
			"Product reads answered by the cache, by tier: local (in process) or redis.", []string{"tier"}, nil),
		misses: prometheus.NewDesc("productd_cache_misses_total",
			"Product reads Redis answered without a value; each is loaded from Postgres.", nil, nil),
		fallbacks: prometheus.NewDesc("productd_cache_fallbacks_total",
			"Product reads served from Postgres because Redis could not be asked (breaker open) or did not answer in time.", nil, nil),
		invalidations: prometheus.NewDesc("productd_cache_invalidations_total",
			"Writes the cache invalidated after.", nil, nil),
		invalidationsLost: prometheus.NewDesc("productd_cache_invalidations_lost_total",
			"Invalidations that could not reach Redis.", nil, nil),
		breakerOpen: prometheus.NewDesc("productd_cache_breaker_open",
			"1 while the cache's breaker is open (reads bypass Redis), else 0.", nil, nil),
		breakerOpens: prometheus.NewDesc("productd_cache_breaker_opens_total",
			"Times the cache's breaker opened.", nil, nil),
		localEntries: prometheus.NewDesc("productd_cache_local_entries",
			"Products the in-process tier holds.", nil, nil),
	})
}

type cacheCollector struct {
	stats                                   func() cache.Stats
	hits, misses, fallbacks                 *prometheus.Desc
	invalidations, invalidationsLost        *prometheus.Desc
	breakerOpen, breakerOpens, localEntries *prometheus.Desc
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.fallbacks, c.invalidations, c.invalidationsLost,
		c.breakerOpen, c.breakerOpens, c.localEntries} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.hits, s.LocalHits, "local")
	counter(c.hits, s.Hits, "redis")
	counter(c.misses, s.Misses)
	counter(c.fallbacks, s.Fallbacks)
	counter(c.invalidations, s.Invalidations)
	counter(c.invalidationsLost, s.InvalidationsLost)
	counter(c.breakerOpens, s.BreakerOpens)
	ch <- prometheus.MustNewConstMetric(c.breakerOpen, prometheus.GaugeValue, boolValue(s.Breaker == cache.BreakerOpen))
	ch <- prometheus.MustNewConstMetric(c.localEntries, prometheus.GaugeValue, float64(s.LocalSize))
}
