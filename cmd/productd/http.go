package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/productd/productd/api"
)

// newHTTPServer returns the HTTP server of a process with the roles in
// selected: /healthz, /readyz and /metrics in every process, the product
// API and the ops console with the api role (see apiRoutes). The returned
// function releases what the routes opened.
func newHTTPServer(ctx context.Context, a *app, selected []string) (*api.Server, func(), error) {
	cfg := api.Config{
		Log:    a.log,
		Checks: a.checks,
		// Only the configured proxies may name the client; the ops routes
		// and /metrics authorise loopback clients by that address.
		TrustedProxies: a.cfg.TrustedProxies,
		Instrument:     a.tel.HTTP(),
	}
	srv, release := api.NewServer(cfg), func() {}
	if slices.Contains(selected, "api") {
		var err error
		if srv, release, err = apiRoutes(ctx, a, cfg); err != nil {
			return nil, nil, err
		}
	}
	mountMetrics(a, srv.Router())
	return srv, release, nil
}

// serveHTTP serves srv on cfg.HTTPAddr until ctx is cancelled, then lets
// in-flight requests finish within the shutdown timeout.
func serveHTTP(ctx context.Context, a *app, srv http.Handler) error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.HTTPAddr, err)
	}
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // multipart uploads of several images
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	a.log.WithField("addr", ln.Addr().String()).Info("http listening")
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("http draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}
