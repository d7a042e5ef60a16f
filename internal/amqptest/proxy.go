package amqptest

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Proxy is an in-process TCP proxy in front of the test RabbitMQ (or another
// service), through which a test can take it away from the code under test.
type Proxy struct {
	t     testing.TB
	mu    sync.Mutex
	proxy *toxiproxy.Proxy
	url   string
}

// NewProxy starts a proxy in front of URL(t); it stops when t ends.
func NewProxy(t testing.TB) *Proxy {
	t.Helper()
	return NewProxyFor(t, URL(t))
}

// NewProxyFor starts a proxy in front of the host of rawURL, whatever the
// service (a Postgres URL works too); it stops when t ends. URL then gives
// rawURL with the proxy's address in place of the host.
func NewProxyFor(t testing.TB, rawURL string) *Proxy {
	t.Helper()
	upstream, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse URL to proxy: %v", err)
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, upstream.Scheme, "127.0.0.1:0", upstream.Host)
	if err := p.Start(); err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(p.Stop)
	proxied := *upstream
	proxied.Host = p.Listen
	return &Proxy{t: t, proxy: p, url: proxied.String()}
}

// URL is the service's URL through the proxy.
func (p *Proxy) URL() string { return p.url }

// Cut closes every connection through the proxy and refuses new ones, as if
// the broker had gone away.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.proxy.Stop()
}

// Restore accepts connections again, on the same address.
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

// RemoveToxic removes the toxic called name.
func (p *Proxy) RemoveToxic(name string) {
	p.t.Helper()
	if err := p.proxy.Toxics.RemoveToxic(context.Background(), name); err != nil {
		p.t.Fatalf("remove toxic %s: %v", name, err)
	}
}
