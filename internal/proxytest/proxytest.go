// Package proxytest puts an in-process toxiproxy between the code under test
// and a real service, so that a test can take the service away from that code
// alone, or make it slow, without touching the service every other test
// shares.
package proxytest

import (
	"fmt"
	"testing"

	"github.com/productd/productd/internal/sandbox"
)

// Proxy is a TCP proxy on a free loopback port in front of one service. Its
// methods fail the test instead of returning errors.
type Proxy struct {
	t     testing.TB
	proxy *sandbox.Proxy
}

// New starts a proxy in front of upstream (host:port); it stops when t ends.
// name only labels the proxy in toxiproxy's own messages.
func New(t testing.TB, name, upstream string) *Proxy {
	t.Helper()
	p, err := sandbox.NewProxy(name, upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return &Proxy{t: t, proxy: p}
}

// Addr is the proxy's host:port. It stays the same across Cut and Restore:
// toxiproxy keeps the port it bound first.
func (p *Proxy) Addr() string { return p.proxy.Addr() }

// Cut closes every connection through the proxy and refuses new ones: to the
// code behind it, the service has gone away.
func (p *Proxy) Cut() { p.proxy.Cut() }

// Restore accepts connections again on the same address.
func (p *Proxy) Restore() { p.check(p.proxy.Restore()) }

// AddToxic adds a toxiproxy toxic given as JSON, for example
// {"name":"lat","type":"latency","stream":"downstream","attributes":{"latency":300}}.
func (p *Proxy) AddToxic(json string) { p.check(p.proxy.AddToxic(json)) }

// AddLatency delays everything the service sends by ms milliseconds until
// the toxic called name is removed.
func (p *Proxy) AddLatency(name string, ms int) { p.check(p.proxy.AddLatency(name, ms)) }

// Blackhole drops everything the service sends, without closing any
// connection, until the toxic called name is removed: the code behind it
// hangs as it would behind a dead network path.
func (p *Proxy) Blackhole(name string) { p.check(p.proxy.Blackhole(name)) }

// LimitBandwidth lets the service send at most kbPerSecond kilobytes a
// second until the toxic called name is removed.
func (p *Proxy) LimitBandwidth(name string, kbPerSecond int) {
	p.AddToxic(fmt.Sprintf(`{"name":%q,"type":"bandwidth","stream":"downstream","attributes":{"rate":%d}}`, name, kbPerSecond))
}

// RemoveToxic removes the toxic called name.
func (p *Proxy) RemoveToxic(name string) { p.check(p.proxy.RemoveToxic(name)) }

func (p *Proxy) check(err error) {
	p.t.Helper()
	if err != nil {
		p.t.Fatal(err)
	}
}
