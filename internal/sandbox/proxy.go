package sandbox

import (
	"context"
	"fmt"
	"strings"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Proxy is a toxiproxy TCP proxy, run inside this process, on a free
// loopback port in front of one service: it takes the service away from the
// code that connects through it, or slows it, and from nothing else.
type Proxy struct {
	mu    sync.Mutex
	proxy *toxiproxy.Proxy
}

// NewProxy starts a proxy in front of upstream (host:port). name labels it
// in toxiproxy's own messages. Close it when done.
func NewProxy(name, upstream string) (*Proxy, error) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("start proxy in front of %s (%s): %w", name, upstream, err)
	}
	return &Proxy{proxy: p}, nil
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
func (p *Proxy) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.proxy.Start(); err != nil {
		return fmt.Errorf("restart proxy on %s: %w", p.proxy.Listen, err)
	}
	return nil
}

// AddToxic adds a toxiproxy toxic given as JSON, for example
// {"name":"lat","type":"latency","stream":"downstream","attributes":{"latency":300}}.
func (p *Proxy) AddToxic(json string) error {
	if _, err := p.proxy.Toxics.AddToxicJson(strings.NewReader(json)); err != nil {
		return fmt.Errorf("add toxic %s: %w", json, err)
	}
	return nil
}

// AddLatency delays everything the service sends by ms milliseconds until
// the toxic called name is removed.
func (p *Proxy) AddLatency(name string, ms int) error {
	return p.AddToxic(fmt.Sprintf(`{"name":%q,"type":"latency","stream":"downstream","attributes":{"latency":%d}}`, name, ms))
}

// Blackhole drops everything the service sends, without closing any
// connection, until the toxic called name is removed: the code behind it
// hangs as it would behind a dead network path.
func (p *Proxy) Blackhole(name string) error {
	return p.AddToxic(fmt.Sprintf(`{"name":%q,"type":"timeout","stream":"downstream","attributes":{"timeout":0}}`, name))
}

// RemoveToxic removes the toxic called name.
func (p *Proxy) RemoveToxic(name string) error {
	if err := p.proxy.Toxics.RemoveToxic(context.Background(), name); err != nil {
		return fmt.Errorf("remove toxic %s: %w", name, err)
	}
	return nil
}

// Close stops the proxy for good.
func (p *Proxy) Close() { p.Cut() }
