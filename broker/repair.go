package broker

import (
	"context"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/productd/productd/internal/backoff"
)

// Redeclare declares the topology again on the live connection, at once,
// waiting for a connection until ctx ends. The connection declares it when
// it opens; what goes missing while it stays open (a queue deleted by an
// operator or a policy, a binding removed) comes back only this way or
// through Repair. Declarations are idempotent, and one runs at a time. It fails when the broker refuses the topology,
// for example a queue re-created by hand with other arguments: that error is
// logged, kept in Stats.TopologyError, and returned.
func (b *Broker) Redeclare(ctx context.Context) error {
	select {
	case b.declaring <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait to declare the topology: %w", ctx.Err())
	}
	defer func() { <-b.declaring }()
	conn, err := b.connection(ctx)
	if err != nil {
		return err
	}
	err = b.declare(ctx, conn)
	b.declared(err)
	if err != nil {
		if ctx.Err() == nil {
			b.log.WithError(err).Error("broker: cannot declare the topology again; what is missing stays missing")
		}
		return fmt.Errorf("declare topology: %w", err)
	}
	b.repairs.Add(1)
	b.log.WithField("state", StateConnected).Warn("broker: topology declared again")
	return nil
}

// Repair declares the topology again in the background, Config.RepairDelay
// from now, because of what reason says went missing; a repair already
// under way covers this one. It never blocks, and logs what it does: a
// Publisher calls it for every message of the topology returned as
// unroutable and every channel the broker closes, a relay while its
// messages have no route. Stats.Declarations moves once the topology is
// back.
func (b *Broker) Repair(reason string) {
	if !b.repairing.CompareAndSwap(false, true) {
		return
	}
	b.log.WithFields(logrus.Fields{"reason": reason, "in": b.cfg.RepairDelay.String()}).
		Warn("broker: part of the topology is missing; declaring it again")
	go func() {
		defer b.repairing.Store(false)
		if !backoff.Sleep(b.life, b.cfg.RepairDelay) {
			return
		}
		ctx, cancel := context.WithTimeout(b.life, b.cfg.DialTimeout)
		defer cancel()
		_ = b.Redeclare(ctx) // logged there
	}()
}
