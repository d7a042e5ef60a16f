package main

import (
	"context"
)

// runRelay publishes the outbox to RabbitMQ until ctx is cancelled.
// Placeholder until the relay lands (issue 3).
func runRelay(ctx context.Context, a *app) error {
	a.log.Warn("relay: not built yet")
	<-ctx.Done()
	return ctx.Err()
}
