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
	"cmp"
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
	"syscall"
	"time"

	"code.dny.dev/ssrf"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/netallow"
	"github.com/productd/productd/internal/settings"
)

// Config sets the client's limits and its allow-list. Zero fields take
// their defaults; negative ones are refused.
type Config struct {
	// Allow lists host names, IP addresses and CIDRs, each with an optional
	// port, that may be fetched although the guard would refuse them: a
	// trusted image host inside the network, or test servers. What an entry
	// lets through is said by package netallow (internal/netallow): a name
	// its own resolved addresses for requests to that name, an address or
	// CIDR those addresses, on ports 80 and 443 unless the entry names one.
	// Default empty.
	Allow []string
	// Timeout bounds a whole download, redirects and body included. Zero
	// means DefaultTimeout (15 s).
	Timeout time.Duration
	// ConnectTimeout bounds one TCP connection attempt. Zero means
	// DefaultConnectTimeout (5 s).
	ConnectTimeout time.Duration
	// MaxBytes caps the size of a download. Zero means DefaultMaxBytes
	// (25 MiB).
	MaxBytes int64
	// MaxRedirects bounds the redirects followed. Zero means
	// DefaultMaxRedirects (5).
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

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, DefaultConnectTimeout)
	c.MaxBytes = cmp.Or(c.MaxBytes, DefaultMaxBytes)
	c.MaxRedirects = cmp.Or(c.MaxRedirects, DefaultMaxRedirects)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	return cmp.Or(
		settings.NonNegative("fetch", settings.F("Timeout", c.Timeout), settings.F("ConnectTimeout", c.ConnectTimeout)),
		settings.NonNegative("fetch", settings.F("MaxBytes", c.MaxBytes)),
		settings.NonNegative("fetch", settings.F("MaxRedirects", c.MaxRedirects)),
	)
}

// Client downloads images. It is safe for concurrent use.
type Client struct {
	cfg      Config
	http     *http.Client
	guardian *ssrf.Guardian
	allow    netallow.List
}

// New returns a client for cfg. An entry of Allow that netallow cannot
// parse is an error.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	allow, err := netallow.ParseList(cfg.Allow)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	c := &Client{cfg: cfg, guardian: ssrf.New(), allow: allow}
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

// dial connects to addr through the guard. The guard runs in the dialer's
// Control hook, after DNS resolution, on the exact address about to be
// connected to, knowing the host name the connection is for.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: c.cfg.ConnectTimeout, Resolver: c.cfg.Resolver}
	d.Control = func(network, address string, raw syscall.RawConn) error {
		if ap, err := netip.ParseAddrPort(address); err == nil && c.allow.Allows(host, ap) {
			return nil
		}
		if err := c.guardian.Safe(network, address, raw); err != nil {
			return &refusedError{address: address, err: err}
		}
		return nil
	}
	return d.DialContext(ctx, network, addr)
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
		// Never the address itself: the reason is public (image_error), and
		// naming what a URL resolves to inside the network would make the
		// worker a scanner of it.
		return productd.Errorf(productd.EUNPROCESSABLE, "the URL leads to an address that is not allowed: only public addresses on ports 80 and 443 are fetched")
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
