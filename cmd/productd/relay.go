package main

import (
	"context"
	"fmt"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/relay"
)

// runRelay publishes the outbox to RabbitMQ until ctx is cancelled, then
// lets the batches in flight finish and returns, within the shutdown timeout
// whatever the broker does: the batches get seven tenths of it (see
// relay.Config.StopTimeout), closing the publishing channel and the
// connection a tenth each.
//
// The broker is deliberately not a readiness check: while RabbitMQ is away
// the API keeps accepting writes into the outbox, and the relay catches up
// when it returns.
func runRelay(ctx context.Context, a *app) error {
	b, err := broker.New(broker.Config{
		URL: a.cfg.AMQPURL, ConnectionName: "productd relay", CloseTimeout: a.cfg.ShutdownTimeout / 10,
	}, a.log)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer b.Close()
	a.tel.Broker("relay", b)
	a.tel.Outbox(a.pool)
	r, err := relay.New(a.pool, b, relay.Config{
		StopTimeout: a.cfg.ShutdownTimeout * 7 / 10, Observer: a.tel.Relay(),
	}, a.log)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return r.Run(ctx)
}
