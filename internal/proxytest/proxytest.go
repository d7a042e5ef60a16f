// Package proxytest puts an in-process toxiproxy between the code under test
// and a real service, so that a test can take the service away from that code
// alone, or make it slow, without touching the service every other test
// shares.
package proxytest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Proxy is a TCP proxy on a free loopback port in front of one service.
type Proxy struct {
	t     testing.TB
	mu    sync.Mutex
	proxy *toxiproxy.Proxy
}

// New starts a proxy in front of upstream (host:port); it stops when t ends.
// name only labels the proxy in toxiproxy's own messages.
func New(t testing.TB, name, upstream string) *Proxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("start proxy in front of %s (%s): %v", name, upstream, err)
	}
	t.Cleanup(p.Stop)
	return &Proxy{t: t, proxy: p}
}

// Addr is the proxy's host:port. It stays the same across Cut and Restore:
// toxiproxy keeps the port it bound first.
func (p *Proxy) Addr() string { return p.proxy.Listen }

// Cut closes every connection through the proxy and refuses new ones: to the
// code behind it, the service has gone away.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.proxy.Stop()
}

// Restore accepts connections again on the same address.
func (p *Proxy) Restore() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.proxy.Start(); err != nil {
		p.t.Fatalf("restart proxy on %s: %v", p.proxy.Listen, err)
	}
}

// AddToxic adds a toxiproxy toxic given as JSON, for example
// {"name":"lat","type":"latency","stream":"downstream","attributes":{"latency":300}}.
func (p *Proxy) AddToxic(json string) {
	p.t.Helper()
	if _, err := p.proxy.Toxics.AddToxicJson(strings.NewReader(json)); err != nil {
		p.t.Fatalf("add toxic %s: %v", json, err)
	}
}

// AddLatency delays everything the service sends by ms milliseconds until
// the toxic called name is removed.
func (p *Proxy) AddLatency(name string, ms int) {
	p.t.Helper()
	p.AddToxic(fmt.Sprintf(`{"name":%q,"type":"latency","stream":"downstream","attributes":{"latency":%d}}`, name, ms))
}

// Blackhole drops everything the service sends, without closing any
// connection, until the toxic called name is removed: the code behind it
// hangs as it would behind a dead network path.
func (p *Proxy) Blackhole(name string) {
	p.t.Helper()
	p.AddToxic(fmt.Sprintf(`{"name":%q,"type":"timeout","stream":"downstream","attributes":{"timeout":0}}`, name))
}

// RemoveToxic removes the toxic called name.
func (p *Proxy) RemoveToxic(name string) {
	p.t.Helper()
	if err := p.proxy.Toxics.RemoveToxic(context.Background(), name); err != nil {
		p.t.Fatalf("remove toxic %s: %v", name, err)
	}
}
