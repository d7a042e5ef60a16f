package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/productd/productd/api"
)

// runAPI serves HTTP on cfg.HTTPAddr until ctx is cancelled, then lets
// in-flight requests finish within the shutdown timeout.
func runAPI(ctx context.Context, a *app) error {
	srv := api.NewServer(api.Config{
		Products:  a.products,
		Log:       a.log,
		Checks:    a.checks,
		Originals: a.originals,
		// Uploads are spooled to $TMPDIR; the cap bounds disk and storage
		// traffic, and answers 503 beyond it.
		MaxConcurrentUploads: a.cfg.MaxConcurrentUploads,
		// Only the configured proxies may name the client; the ops routes
		// authorise loopback clients by that address.
		TrustedProxies: a.cfg.TrustedProxies,
		Instrument:     a.tel.HTTP(),
		QueryTimeout:   a.cfg.APIQueryTimeout,
	})
	mountMetrics(a, srv.Router())
	closeOps, err := mountOps(ctx, a, srv.Router())
	if err != nil {
		return err
	}
	defer closeOps()
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
	a.log.WithField("addr", ln.Addr().String()).Info("api listening")
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("api draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}
