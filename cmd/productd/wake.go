package main

import (
	"context"

	"github.com/productd/productd/outbox"
)

// wakeRelays returns what the process's writes call after a commit that
// wrote outbox rows: the Wake of its own relay, which then publishes them;
// without one, for an API, the Wake of an outbox.Notifier that notifies
// every relay (at most once per few milliseconds) until ctx ends; nil for a
// process whose writes never reach the outbox.
func wakeRelays(ctx context.Context, a *app, api bool) func() {
	switch {
	case a.relay != nil:
		return a.relay.Wake
	case api:
		n := outbox.NewNotifier(a.pool, outbox.NotifierConfig{OnError: func(err error) {
			a.log.WithError(err).Warn("outbox: could not wake the relays; they find the rows at their next poll")
		}})
		n.Start(ctx)
		return n.Wake
	}
	return nil
}
