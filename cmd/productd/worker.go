package main

import "context"

// runWorker compresses product images until ctx is cancelled.
// Placeholder until the image worker lands (issue 4).
func runWorker(ctx context.Context, a *app) error {
	a.log.Warn("worker: not built yet")
	<-ctx.Done()
	return ctx.Err()
}

// setupStorage connects the object storage that keeps uploaded originals
// and sets a.originals. Placeholder until the image worker lands (issue 4):
// uploads are refused until then.
func setupStorage(ctx context.Context, a *app) error { return nil }
