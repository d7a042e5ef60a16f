// Package fetch downloads image originals from URLs that users supplied,
// without letting those URLs reach the machine's own network: loopback,
// private, link-local and cloud metadata addresses are refused after DNS
// resolution, on every redirect, so neither a hostname that resolves to
// 127.0.0.1 nor a public URL that redirects inwards gets through.
//
// Its errors are application errors whose code says whether to retry:
// EUNAVAILABLE for what may pass (a timeout, a refused connection, a 5xx or
// 429 answer), and for the rest, which will not, EUNPROCESSABLE (refused
// address, 4xx, too many redirects), ETOOLARGE (over the size cap) or
// ENOTFOUND (no such host, 404, 410).
package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"

	"github.com/productd/productd"
)

// Config sets the client's limits and its allow-list. Zero fields take
// their defaults.
type Config struct {
	// Allow lists host names and CIDRs (a bare IP is one address) that may
	// be fetched although the guard would refuse them, on any port: test
	// servers, or a trusted image host inside the network. Default empty.
	Allow []string
	// Timeout bounds a whole download, redirects and body included
	// (default 15s).
	Timeout time.Duration
	// ConnectTimeout bounds one TCP connection attempt (default 5s).
	ConnectTimeout time.Duration
	// MaxBytes caps the size of a download (default 25 MiB).
	MaxBytes int64
	// MaxRedirects bounds the redirects followed (default 5).
	MaxRedirects int
	// Resolver resolves host names; nil means the system's. Tests use it to
	// make a public-looking name resolve to loopback.
	Resolver *net.Resolver
}

// Defaults of Config.
const (
	DefaultTimeout        = 15 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultMaxBytes       = 25 << 20
	DefaultMaxRedirects   = 5
)

// Client downloads images. It is safe for concurrent use.
type Client struct {
	cfg      Config
	http     *http.Client
	guardian *ssrf.Guardian
	hosts    map[string]bool
	prefixes []netip.Prefix
}

// New returns a client for cfg. An entry of Allow that is neither a host
// name nor a CIDR is an error.
func New(cfg Config) (*Client, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxRedirects <= 0 {
		cfg.MaxRedirects = DefaultMaxRedirects
	}
	c := &Client{cfg: cfg, guardian: ssrf.New(), hosts: map[string]bool{}}
	for _, a := range cfg.Allow {
		a = strings.TrimSpace(a)
		switch p, err := netip.ParsePrefix(a); {
		case err == nil:
			c.prefixes = append(c.prefixes, p.Masked())
		case strings.Contains(a, "/"):
			return nil, fmt.Errorf("fetch: allow-list entry %q is not a valid CIDR", a)
		default:
			if ip, err := netip.ParseAddr(strings.Trim(a, "[]")); err == nil {
				c.prefixes = append(c.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
			} else if a != "" {
				c.hosts[strings.ToLower(a)] = true
			}
		}
	}
	transport := &http.Transport{
		// No proxy: the guard must see the address actually dialled.
		Proxy:                 nil,
		DialContext:           c.dial,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	c.http = &http.Client{Transport: transport, CheckRedirect: c.checkRedirect}
	return c, nil
}

// dial connects to addr through the guard, unless its host is allowed by
// name. The guard runs in the dialer's Control hook, after DNS resolution,
// on the exact address about to be connected to.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: c.cfg.ConnectTimeout, Resolver: c.cfg.Resolver}
	if host, _, err := net.SplitHostPort(addr); err != nil || !c.hosts[strings.ToLower(host)] {
		d.Control = c.control
	}
	return d.DialContext(ctx, network, addr)
}

// control refuses special-purpose addresses and ports other than 80 and
// 443, except for the allow-listed prefixes.
func (c *Client) control(network, address string, raw syscall.RawConn) error {
	if ap, err := netip.ParseAddrPort(address); err == nil {
		for _, p := range c.prefixes {
			if p.Contains(ap.Addr().Unmap()) {
				return nil
			}
		}
	}
	if err := c.guardian.Safe(network, address, raw); err != nil {
		return &refusedError{address: address, err: err}
	}
	return nil
}

// refusedError is the guard's refusal of one address.
type refusedError struct {
	address string
	err     error
}

func (e *refusedError) Error() string { return "refused " + e.address + ": " + e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > c.cfg.MaxRedirects {
		return productd.Errorf(productd.EUNPROCESSABLE, "more than %d redirects", c.cfg.MaxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return productd.Errorf(productd.EUNPROCESSABLE, "redirected to a %s URL; only http and https are fetched", req.URL.Scheme)
	}
	return nil
}

// Get downloads rawURL and returns its body.
func (c *Client) Get(ctx context.Context, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, productd.Errorf(productd.EUNPROCESSABLE, "not an http or https URL")
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, productd.Errorf(productd.EUNPROCESSABLE, "not a valid URL: %v", err)
	}
	req.Header.Set("Accept", "image/jpeg, image/png, image/gif, image/webp, image/*;q=0.8")
	req.Header.Set("User-Agent", "productd-imageworker/1")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.classify(err)
	}
	defer resp.Body.Close()
	if err := statusError(resp); err != nil {
		return nil, err
	}
	if resp.ContentLength > c.cfg.MaxBytes {
		return nil, c.tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBytes+1))
	if err != nil {
		return nil, c.classify(err)
	}
	if int64(len(body)) > c.cfg.MaxBytes {
		return nil, c.tooLarge()
	}
	return body, nil
}

func (c *Client) tooLarge() error {
	return productd.Errorf(productd.ETOOLARGE, "the file is larger than the limit of %d MiB", c.cfg.MaxBytes>>20)
}

// statusError classifies a non-2xx answer.
func statusError(resp *http.Response) error {
	code := resp.StatusCode
	text := fmt.Sprintf("%d %s", code, http.StatusText(code))
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusNotFound || code == http.StatusGone:
		return productd.Errorf(productd.ENOTFOUND, "the server answered %s", text)
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		return productd.Errorf(productd.EUNAVAILABLE, "the server answered %s", text)
	}
	return productd.Errorf(productd.EUNPROCESSABLE, "the server answered %s", text)
}

// classify turns a transport error into an application error: refusals and
// broken names or certificates are permanent, the rest may pass.
func (c *Client) classify(err error) error {
	var appErr *productd.Error
	var refused *refusedError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	switch {
	case errors.As(err, &appErr): // from checkRedirect
		return appErr
	case errors.As(err, &refused):
		return productd.Errorf(productd.EUNPROCESSABLE, "the URL leads to %s, which is not allowed: only public addresses on ports 80 and 443 are fetched", refused.address)
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return productd.Errorf(productd.ENOTFOUND, "the host %s does not exist", dnsErr.Name)
	case errors.As(err, &certErr), errors.As(err, &unknownAuthority), errors.As(err, &hostnameErr):
		return productd.Errorf(productd.EUNPROCESSABLE, "the server's TLS certificate is not valid: %v", err)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return productd.Errorf(productd.EUNAVAILABLE, "the server did not answer within %v", c.cfg.Timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return productd.Errorf(productd.EUNAVAILABLE, "the server refused the connection")
	}
	return productd.Errorf(productd.EUNAVAILABLE, "the download failed: %v", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
