package api

import (
	"net/netip"

	"github.com/gin-gonic/gin"
)

// forwardedForHeader is the one header through which a trusted proxy names
// the client. X-Real-IP is not read: proxies often pass a client's own
// through unchanged.
const forwardedForHeader = "X-Forwarded-For"

// clientAddrKey holds the request's client address in the Gin context.
const clientAddrKey = "client_addr"

// clientAddr resolves the client's address once per request, for
// ClientAddr and the access log.
func clientAddr(trusted []netip.Prefix) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Set(clientAddrKey, resolveClientAddr(c, trusted))
		c.Next()
	}
}

// ClientAddr returns the address of the client that sent the request: the
// address of the socket's peer, unless that peer is one of
// Config.TrustedProxies, in which case the last address in X-Forwarded-For
// that is not itself a trusted proxy. A request from a trusted proxy that
// names no client in X-Forwarded-For has an unknown client: the zero Addr,
// which is not valid and not a loopback address, so that a proxy running on
// the same host never passes its clients off as local ones.
//
// Authorisation by address (loopback clients only, for example) must use
// ClientAddr, never a header and never gin.Context.ClientIP on an engine
// other than the Server's.
func ClientAddr(c *gin.Context) netip.Addr {
	if v, ok := c.Get(clientAddrKey); ok {
		if addr, ok := v.(netip.Addr); ok {
			return addr
		}
	}
	// Outside the Server's middleware no proxy is trusted.
	return resolveClientAddr(c, nil)
}

func resolveClientAddr(c *gin.Context, trusted []netip.Prefix) netip.Addr {
	peer, err := netip.ParseAddr(c.RemoteIP())
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !containsAddr(trusted, peer) {
		return peer
	}
	// Gin's engine trusts the same proxies and walks X-Forwarded-For from
	// the right, stopping at the first address that is not a trusted proxy.
	ip := c.ClientIP()
	if ip == c.RemoteIP() {
		return netip.Addr{}
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}
	}
	return addr.Unmap()
}

func containsAddr(prefixes []netip.Prefix, addr netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// trustProxies makes the engine's ClientIP agree with ClientAddr: only
// X-Forwarded-For, and only from the trusted proxies (none when empty,
// where gin.New trusts every address). Invalid prefixes are left out, so
// that a mistake trusts less, never more.
func trustProxies(r *gin.Engine, trusted []netip.Prefix) []netip.Prefix {
	r.RemoteIPHeaders = []string{forwardedForHeader}
	r.TrustedPlatform = ""
	var valid []netip.Prefix
	var cidrs []string
	for _, p := range trusted {
		if p.IsValid() {
			valid = append(valid, p)
			cidrs = append(cidrs, p.String())
		}
	}
	// Gin parses what netip printed, so this cannot fail; nil trusts none.
	_ = r.SetTrustedProxies(cidrs)
	return valid
}
