package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/internal/backoff"
	"github.com/productd/productd/internal/settings"
)

// ConsumeOptions configure Consume.
type ConsumeOptions struct {
	// Queue to consume from. Required.
	Queue string

	// Prefetch is how many unacknowledged deliveries the broker sends ahead
	// (per-consumer QoS). Zero means DefaultPrefetch (32).
	Prefetch int

	// Concurrency is how many handlers run at once. Zero means
	// DefaultConcurrency (1). It should not exceed Prefetch, or handlers sit
	// idle.
	Concurrency int

	// ConsumerTag names the consumer in the management UI; empty lets the
	// library generate one.
	ConsumerTag string
}

// Defaults of ConsumeOptions.
const (
	DefaultPrefetch    = 32
	DefaultConcurrency = 1
)

// Handler processes one delivery and must ack, nack or reject it. A delivery
// that is not acknowledged when its channel dies goes back to the queue and
// is delivered again, so a handler must be idempotent.
type Handler func(ctx context.Context, d amqp.Delivery)

// Consume subscribes to opts.Queue and calls handle for every delivery, from
// opts.Concurrency goroutines, until ctx ends. When the connection or the
// channel is lost, or the broker cancels the subscription (its queue was
// deleted), it subscribes again, so a consumer survives broker restarts and
// operators' mistakes without the caller's help: on a live connection it
// first waits Config.RepairDelay and declares the topology again
// (Redeclare) when opts.Queue is one of the topology's, and a subscription
// the broker refuses is retried with a growing wait (Config.ReconnectMin to
// ReconnectMax). Handlers still running
// on the dead channel finish first, and their acks fail (the broker
// redelivers those messages).
//
// When ctx ends, Consume cancels the subscription, takes no more
// deliveries, waits for the running handlers (they are given ctx, already
// done, and decide for themselves whether to finish their work), closes the
// channel, which returns every unacknowledged delivery to the queue, and
// returns ctx's error. None of this waits for the broker longer than
// Config.CloseTimeout: a broker that stopped answering does not hold up the
// shutdown. It returns early only for bad options or after the Broker is
// closed.
func (b *Broker) Consume(ctx context.Context, opts ConsumeOptions, handle Handler) error {
	if opts.Queue == "" {
		return errors.New("consume: no queue")
	}
	opts.Prefetch = cmp.Or(opts.Prefetch, DefaultPrefetch)
	opts.Concurrency = cmp.Or(opts.Concurrency, DefaultConcurrency)
	if err := settings.NonNegative("broker", settings.F("Prefetch", opts.Prefetch), settings.F("Concurrency", opts.Concurrency)); err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	log := b.log.WithField("queue", opts.Queue)
	for failures := 0; ; {
		err := b.consumeOnce(ctx, opts, handle, log)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrClosed):
			return err
		case err != nil:
			failures++
			log.WithError(err).WithField("attempt", failures).Warn("broker: consumer subscription failed; subscribing again")
		default:
			failures = 0
			log.Warn("broker: consumer channel closed or subscription cancelled by the broker; subscribing again")
		}
		var wait time.Duration
		if failures > 0 {
			wait = backoff.Exponential(failures, b.cfg.ReconnectMin, b.cfg.ReconnectMax)
		}
		// A lost connection declares the topology when it comes back; a
		// live one lost part of it only if someone deleted it. It is
		// declared again after Config.RepairDelay, so that the other
		// consumers of a deleted queue learn of the deletion first.
		repair := b.Connected() && b.cfg.Topology.HasQueue(opts.Queue)
		if repair {
			wait = max(wait, b.cfg.RepairDelay)
		}
		if !backoff.Sleep(ctx, wait) {
			return ctx.Err()
		}
		if repair {
			_ = b.Redeclare(ctx) // logged there; the subscription then says whether it helped
		}
	}
}

// consumeOnce runs one subscription until its channel dies (nil) or ctx ends.
func (b *Broker) consumeOnce(ctx context.Context, opts ConsumeOptions, handle Handler, log *logrus.Entry) error {
	ch, err := b.Channel(ctx)
	if err != nil {
		return err
	}
	// Closing returns the unacknowledged deliveries to the queue; an error
	// means the channel is closed already, or the broker does not answer.
	defer b.closeChannel(ch) //nolint:errcheck // see above
	deliveries, err := within(ctx, func() (<-chan amqp.Delivery, error) {
		if err := ch.Qos(opts.Prefetch, 0, false); err != nil {
			return nil, fmt.Errorf("set prefetch on %s: %w", opts.Queue, err)
		}
		d, err := ch.ConsumeWithContext(ctx, opts.Queue, opts.ConsumerTag, false, false, false, false, nil)
		if err != nil {
			return nil, fmt.Errorf("consume %s: %w", opts.Queue, err)
		}
		return d, nil
	}, nil)
	if err != nil {
		return err
	}
	log.WithField("prefetch", opts.Prefetch).Info("broker: consuming")

	var wg sync.WaitGroup
	for range opts.Concurrency {
		wg.Go(func() {
			// deliveries closes when the channel dies, or when the
			// subscription is cancelled: by the broker, or once ctx ends and
			// the broker confirms the cancel, which a broker that stopped
			// answering never does. Hence ctx ends the loop too.
			for ctx.Err() == nil {
				select {
				case d, ok := <-deliveries:
					if !ok {
						return
					}
					handle(ctx, d)
				case <-ctx.Done():
				}
			}
		})
	}
	wg.Wait()
	return nil
}
