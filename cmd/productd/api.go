package main

import (
	"context"

	"github.com/productd/productd/api"
)

// apiRoutes is the api role: the product API and the ops console on the
// process's HTTP server, whose settings cfg already holds. The returned
// function closes the console.
func apiRoutes(ctx context.Context, a *app, cfg api.Config) (*api.Server, func(), error) {
	cfg.Products = a.products
	cfg.Originals = a.originals
	// Uploads are spooled to $TMPDIR; the cap bounds disk and storage
	// traffic, and answers 503 beyond it.
	cfg.MaxConcurrentUploads = a.cfg.MaxConcurrentUploads
	cfg.QueryTimeout = a.cfg.APIQueryTimeout
	srv := api.NewServer(cfg)
	closeOps, err := mountOps(ctx, a, srv.Router())
	if err != nil {
		return nil, nil, err
	}
	return srv, closeOps, nil
}
