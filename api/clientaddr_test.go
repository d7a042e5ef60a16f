package api_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/productd/productd/api"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

// A client cannot pass itself off as another address, loopback least of
// all: forwarding headers count only from the proxies the server trusts,
// in the access log as in what ClientAddr tells the routes that authorise
// by address.
func TestClientAddrCannotBeForged(t *testing.T) {
	t.Parallel()
	products := db.NewProductService(dbtest.NewPool(t))
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		headers map[string]string
		want    string // "" is an unknown client
	}{
		{"no proxy trusted, forged loopback", nil, "203.0.113.9", map[string]string{"X-Forwarded-For": "127.0.0.1"}, "203.0.113.9"},
		{"no proxy trusted, forged X-Real-IP", nil, "203.0.113.9", map[string]string{"X-Real-IP": "127.0.0.1"}, "203.0.113.9"},
		{"no proxy trusted, loopback peer", nil, "127.0.0.1", map[string]string{"X-Forwarded-For": "198.51.100.4"}, "127.0.0.1"},
		{"untrusted peer", prefixes("10.0.0.7"), "203.0.113.9", map[string]string{"X-Forwarded-For": "127.0.0.1"}, "203.0.113.9"},
		{"trusted proxy", prefixes("10.0.0.0/8"), "10.0.0.7", map[string]string{"X-Forwarded-For": "198.51.100.4"}, "198.51.100.4"},
		{"trusted proxy, client forged the start of the chain", prefixes("10.0.0.7"), "10.0.0.7", map[string]string{"X-Forwarded-For": "127.0.0.1, 198.51.100.4"}, "198.51.100.4"},
		{"two trusted proxies", prefixes("10.0.0.7", "10.0.0.8"), "10.0.0.7", map[string]string{"X-Forwarded-For": "127.0.0.1, 198.51.100.4, 10.0.0.8"}, "198.51.100.4"},
		{"trusted proxy that names no client", prefixes("127.0.0.1"), "127.0.0.1", nil, ""},
		{"trusted proxy that passes X-Real-IP only", prefixes("127.0.0.1"), "127.0.0.1", map[string]string{"X-Real-IP": "127.0.0.1"}, ""},
		{"IPv6 peer", nil, "[2001:db8::1]", map[string]string{"X-Forwarded-For": "::1"}, "2001:db8::1"},
	} {
		log, hook := test.NewNullLogger()
		srv := api.NewServer(api.Config{Products: products, Log: log, TrustedProxies: tc.trusted})
		srv.Router().GET("/whoami", func(c *gin.Context) {
			addr := api.ClientAddr(c)
			if addr.IsLoopback() && tc.want != "127.0.0.1" {
				t.Errorf("%s: a route sees a loopback client", tc.name)
			}
			c.String(http.StatusOK, addr.String())
		})
		req := httptest.NewRequest(http.MethodGet, "/whoami", nil)
		req.RemoteAddr = tc.peer + ":41000"
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		want, wantLog := tc.want, tc.want
		if want == "" {
			want, wantLog = "invalid IP", "unknown"
		}
		if got := rec.Body.String(); got != want {
			t.Errorf("%s: ClientAddr = %s, want %s", tc.name, got, want)
		}
		if got := hook.LastEntry().Data["client_ip"]; got != wantLog {
			t.Errorf("%s: access log client_ip = %v, want %s", tc.name, got, wantLog)
		}
	}
}

// Outside the server's middleware, ClientAddr trusts no proxy.
func TestClientAddrWithoutTheServer(t *testing.T) {
	t.Parallel()
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
	c.Request.RemoteAddr = "203.0.113.9:1"
	c.Request.Header.Set("X-Forwarded-For", "127.0.0.1")
	if got := api.ClientAddr(c); got.String() != "203.0.113.9" {
		t.Errorf("ClientAddr = %s", got)
	}
	c.Request.RemoteAddr = "not an address"
	if got := api.ClientAddr(c); got.IsValid() {
		t.Errorf("ClientAddr of a request without a peer address = %s", got)
	}
}

func prefixes(items ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range items {
		addr, err := netip.ParseAddr(s)
		if err == nil {
			out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}
