package netallow_test

import (
	"net/netip"
	"testing"

	"github.com/productd/productd/internal/netallow"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]netallow.Entry{
		"Images.Example.com":    {Host: "images.example.com"},
		"images.example.com.":   {Host: "images.example.com"},
		"images.internal:8080":  {Host: "images.internal", Port: 8080},
		"localhost:*":           {Host: "localhost", Port: netallow.AnyPort},
		"10.1.2.3":              {Prefix: netip.MustParsePrefix("10.1.2.3/32")},
		"10.1.2.3:81":           {Prefix: netip.MustParsePrefix("10.1.2.3/32"), Port: 81},
		"10.9.9.9/8":            {Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		" 10.0.0.0/8:8080 ":     {Prefix: netip.MustParsePrefix("10.0.0.0/8"), Port: 8080},
		"::1":                   {Prefix: netip.MustParsePrefix("::1/128")},
		"[::1]":                 {Prefix: netip.MustParsePrefix("::1/128")},
		"[fd00::/8]:8080":       {Prefix: netip.MustParsePrefix("fd00::/8"), Port: 8080},
		"::ffff:10.0.0.1":       {Prefix: netip.MustParsePrefix("10.0.0.1/32")},
		"127.0.0.1:*":           {Prefix: netip.MustParsePrefix("127.0.0.1/32"), Port: netallow.AnyPort},
		"my_host-1.example.org": {Host: "my_host-1.example.org"},
	} {
		got, err := netallow.Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.0/99", "a b", "host:0", "host:65536", "host:x", "[::1", "[::1]8080",
		"http://example.com", "a..b", "10.0.0.0/8:", "[::1]:*:1"} {
		if e, err := netallow.Parse(in); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", in, e)
		}
	}
	if _, err := netallow.ParseList([]string{"ok.example.com", "bad host"}); err == nil {
		t.Error("ParseList took a bad entry")
	}
}

func TestAllows(t *testing.T) {
	t.Parallel()
	l, err := netallow.ParseList([]string{"images.internal", "cdn.internal:8080", "10.0.0.0/8", "192.168.1.5:9000", "[fd00::/8]:*"})
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		host string
		addr string
		want bool
	}{
		{"images.internal", "172.16.0.1:443", true},   // the name's resolved address, default port
		{"IMAGES.internal.", "172.16.0.1:80", true},   // names compare case-insensitively
		{"images.internal", "172.16.0.1:8080", false}, // not a default port
		{"other.example", "172.16.0.1:443", false},    // another name leading to the same address
		{"cdn.internal", "172.16.0.2:8080", true},     // the entry's port
		{"cdn.internal", "172.16.0.2:443", false},     // only that port
		{"anything.example", "10.2.3.4:80", true},     // inside the CIDR, whatever the name
		{"anything.example", "10.2.3.4:22", false},    // a CIDR opens 80 and 443 only
		{"anything.example", "11.0.0.1:80", false},    // outside
		{"192.168.1.5", "192.168.1.5:9000", true},     // an address with its port
		{"192.168.1.5", "192.168.1.5:80", false},      // not another
		{"v6.example", "[fd00::1]:22", true},          // any port
		{"v6.example", "[::ffff:10.0.0.1]:80", true},  // a mapped IPv4 address is the IPv4 one
		{"v6.example", "[fe80::1]:80", false},         // outside
	} {
		if got := l.Allows(tc.host, ap(tc.addr)); got != tc.want {
			t.Errorf("Allows(%s, %s) = %v, want %v", tc.host, tc.addr, got, tc.want)
		}
	}
}
