package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Proxy is a toxiproxy, run inside the test process, between the code under
// test and the shared Redis. Cutting it makes Redis unreachable for that code
// alone.
type Proxy struct {
	t     testing.TB
	proxy *toxiproxy.Proxy
}

// NewProxy starts a proxy to Redis on a free loopback port and stops it when
// t ends.
func NewProxy(t testing.TB) *Proxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	srv.Metrics.ProxyMetrics = collectors.NewProxyMetricCollectors()
	p := toxiproxy.NewProxy(srv, "redis-"+strings.ReplaceAll(t.Name(), "/", "-"), freeAddr(t), Addr(t))
	if err := p.Start(); err != nil {
		t.Fatalf("start toxiproxy to redis: %v", err)
	}
	t.Cleanup(p.Stop)
	return &Proxy{t: t, proxy: p}
}

// URL is the Redis URL that goes through the proxy.
func (p *Proxy) URL() string { return WithAddr(p.t, p.proxy.Listen) }

// Cut closes the proxy's listener and every connection through it: to the
// code behind it, Redis has gone away.
func (p *Proxy) Cut() { p.proxy.Stop() }

// Restore listens again on the same address, so that clients reconnect.
func (p *Proxy) Restore() {
	p.t.Helper()
	if err := p.proxy.Start(); err != nil {
		p.t.Fatalf("restart toxiproxy on %s: %v", p.proxy.Listen, err)
	}
}

// AddLatency delays every reply from Redis by ms milliseconds until the
// toxic is removed.
func (p *Proxy) AddLatency(name string, ms int) {
	p.t.Helper()
	p.addToxic(fmt.Sprintf(`{"name":%q,"type":"latency","stream":"downstream","attributes":{"latency":%d}}`, name, ms))
}

// RemoveToxic removes the toxic added under name.
func (p *Proxy) RemoveToxic(name string) {
	p.t.Helper()
	if err := p.proxy.Toxics.RemoveToxic(context.Background(), name); err != nil {
		p.t.Fatalf("remove toxic %s: %v", name, err)
	}
}

// Blackhole drops everything Redis sends through the proxy, without closing
// any connection, until the toxic is removed: the code behind it hangs as it
// would behind a dead network path.
func (p *Proxy) Blackhole(name string) {
	p.t.Helper()
	p.addToxic(fmt.Sprintf(`{"name":%q,"type":"timeout","stream":"downstream","attributes":{"timeout":0}}`, name))
}

func (p *Proxy) addToxic(body string) {
	p.t.Helper()
	if _, err := p.proxy.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
		p.t.Fatalf("add toxic %s: %v", body, err)
	}
}
