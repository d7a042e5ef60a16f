// Package netallow reads the entries of the image worker's fetch allow-list
// (IMAGE_FETCH_ALLOW) and says what each lets through the SSRF guard.
//
// An entry is a host name, an IP address or a CIDR, optionally with a port:
//
//	images.internal         the addresses this name resolves to, on ports 80 and 443
//	images.internal:8080    the same, on port 8080 only
//	10.1.2.3, 10.0.0.0/8    these addresses, whatever name led there, on ports 80 and 443
//	10.0.0.0/8:8080         these addresses on port 8080 only
//	[fd00::/8]:8080         an IPv6 address or CIDR takes its port after brackets
//	127.0.0.1:*             any port (for tests)
//
// A host name is trusted for the requests made to that name: its resolved
// addresses pass for that connection only, so another name resolving to
// the same internal address is still refused, and so is a redirect from
// the trusted name to an internal address.
package netallow

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Entry is one parsed allow-list entry: a host name or an address prefix,
// and the port it opens.
type Entry struct {
	// Host is the lower-cased host name, or empty for an address entry.
	Host string
	// Prefix holds the addresses of an address entry (a bare IP is a
	// prefix of one address).
	Prefix netip.Prefix
	// Port is the port allowed: 0 means 80 and 443, AnyPort any.
	Port int
}

// AnyPort is the Port of an entry written with ":*".
const AnyPort = -1

// Parse reads one entry; see the package comment for the forms.
func Parse(s string) (Entry, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Entry{}, fmt.Errorf("empty entry")
	}
	target, port, err := splitPort(s)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Port: port}
	switch {
	case strings.Contains(target, "/"):
		p, err := netip.ParsePrefix(target)
		if err != nil {
			return Entry{}, fmt.Errorf("%q is not a valid CIDR", target)
		}
		e.Prefix = p.Masked()
	default:
		if ip, err := netip.ParseAddr(target); err == nil {
			e.Prefix = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		} else if validHost(target) {
			e.Host = strings.ToLower(strings.TrimSuffix(target, "."))
		} else {
			return Entry{}, fmt.Errorf("%q is neither a host name, an IP address nor a CIDR", target)
		}
	}
	return e, nil
}

// splitPort separates an entry's optional port. IPv6 addresses and CIDRs
// carry one only in brackets: "[fd00::1]:8080".
func splitPort(s string) (target string, port int, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", 0, fmt.Errorf("%q has no closing bracket", s)
		}
		target, rest := s[1:end], s[end+1:]
		if rest == "" {
			return target, 0, nil
		}
		if !strings.HasPrefix(rest, ":") {
			return "", 0, fmt.Errorf("%q: want [address]:port", s)
		}
		port, err := parsePort(rest[1:])
		return target, port, err
	}
	if strings.Count(s, ":") != 1 {
		return s, 0, nil // no port, or an IPv6 address without one
	}
	i := strings.LastIndex(s, ":")
	port, err = parsePort(s[i+1:])
	return s[:i], port, err
}

func parsePort(s string) (int, error) {
	if s == "*" {
		return AnyPort, nil
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%q is not a port (1-65535 or *)", s)
	}
	return p, nil
}

// validHost reports whether s looks like a DNS name: labels of letters,
// digits, hyphens and underscores.
func validHost(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// opens reports whether the entry's port rule lets port through.
func (e Entry) opens(port uint16) bool {
	switch e.Port {
	case AnyPort:
		return true
	case 0:
		return port == 80 || port == 443
	}
	return int(port) == e.Port
}

// List is a parsed allow-list.
type List []Entry

// ParseList parses every entry of entries.
func ParseList(entries []string) (List, error) {
	var l List
	for _, s := range entries {
		e, err := Parse(s)
		if err != nil {
			return nil, fmt.Errorf("allow-list entry %q: %w", s, err)
		}
		l = append(l, e)
	}
	return l, nil
}

// Allows reports whether a connection made for host (the name in the URL,
// or an address) to addr may pass although the guard would refuse it:
// addr is in an address entry, or host is a listed name, with the port
// open in that entry.
func (l List) Allows(host string, addr netip.AddrPort) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	ip := addr.Addr().Unmap()
	for _, e := range l {
		if !e.opens(addr.Port()) {
			continue
		}
		if e.Host != "" && e.Host == host || e.Host == "" && e.Prefix.Contains(ip) {
			return true
		}
	}
	return false
}
