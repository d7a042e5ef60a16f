package redistest

import (
	"testing"

	"github.com/productd/productd/internal/proxytest"
)

// Proxy is a toxiproxy, run inside the test process, between the code under
// test and the shared Redis. Cutting it makes Redis unreachable for that code
// alone.
type Proxy struct {
	*proxytest.Proxy
	t testing.TB
}

// NewProxy starts a proxy to Redis on a free loopback port and stops it when
// t ends.
func NewProxy(t testing.TB) *Proxy {
	t.Helper()
	return &Proxy{Proxy: proxytest.New(t, "redis", Addr(t)), t: t}
}

// URL is the Redis URL that goes through the proxy.
func (p *Proxy) URL() string { return WithAddr(p.t, p.Addr()) }
