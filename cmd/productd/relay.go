package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/productd/productd/api"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/relay"
)

// setupRelay connects the relay's broker and builds a.relay, before the
// roles start, so that setupChores can register the relay's chores, and
// makes the broker connection a readiness check: a relay without it
// publishes nothing. The returned function closes the broker connection.
func setupRelay(a *app) (closeBroker func(), err error) {
	b, err := broker.New(broker.Config{
		URL: a.cfg.AMQPURL, ConnectionName: "productd relay", CloseTimeout: a.cfg.ShutdownTimeout / 10,
	}, a.log)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	a.tel.Broker("relay", b)
	a.tel.Outbox(a.pool)
	r, err := relay.New(a.pool, b, relay.Config{
		StopTimeout: a.cfg.ShutdownTimeout * 6 / 10, Observer: a.tel.Relay(),
	}, a.log)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("relay: %w", err)
	}
	a.tel.RelayState(r.Stats)
	a.relay = r
	a.need("rabbitmq", brokerCheck(b))
	return func() { b.Close() }, nil
}

// runRelay publishes the outbox to RabbitMQ and runs the process's chores
// until ctx is cancelled, then returns within the shutdown timeout whatever
// the broker does: the chores get a tenth of it to stop (see setupChores),
// the relay's batches six tenths (relay.Config.StopTimeout), closing the
// publishing channel and the connection a tenth each. The chores start
// first, so that a River that cannot start stops the role at once.
func runRelay(ctx context.Context, a *app) error {
	if err := a.chores.Start(ctx); err != nil {
		return err
	}
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRelay()
	relayDone := make(chan error, 1)
	go func() { relayDone <- a.relay.Run(relayCtx) }()
	<-ctx.Done()
	a.chores.Stop(ctx)
	stopRelay()
	return <-relayDone
}

// brokerCheck is the readiness check of a role's broker connection.
func brokerCheck(b *broker.Broker) api.Check {
	return func(context.Context) error {
		if b.Connected() {
			return nil
		}
		return errors.New("no connection to RabbitMQ: " + string(b.State()))
	}
}
