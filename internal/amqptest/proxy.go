package amqptest

import (
	"net/url"
	"testing"

	"github.com/productd/productd/internal/proxytest"
)

// Proxy is an in-process TCP proxy in front of the test RabbitMQ (or another
// service), through which a test can take it away from the code under test.
type Proxy struct {
	*proxytest.Proxy
	url string
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
	p := proxytest.New(t, upstream.Scheme, upstream.Host)
	proxied := *upstream
	proxied.Host = p.Addr()
	return &Proxy{Proxy: p, url: proxied.String()}
}

// URL is the service's URL through the proxy.
func (p *Proxy) URL() string { return p.url }
