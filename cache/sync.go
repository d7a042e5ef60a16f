package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/internal/backoff"
)

// The background work of an instance: a subscription on which it hears
// generation changes (eventsChannel) and invalidations for its in-process
// tier and their acknowledgements (ownChannel); and a loop that probes Redis
// while the breaker is open and renews the tier's lease while it is closed.
//
// Messages, as space-separated fields:
//
//	g <generation>                      on eventsChannel: use this generation
//	i <product id> <msg id> <writer>    drop the product, then acknowledge
//	a <msg id>                          an acknowledgement for this writer

var errNotSubscribed = errors.New("the invalidation subscription is not confirmed yet")

// pingEvery is how long the subscription may stay silent before it is
// pinged; a ping unanswered for as long again counts as a lost connection.
func (s *ProductService) pingEvery() time.Duration { return max(s.cfg.LeaseTTL/2, 10*time.Millisecond) }

func (s *ProductService) subscribe(ctx context.Context) {
	defer s.wg.Done()
	reported := false
	report := func() {
		if !reported {
			reported = true
			close(s.firstSub)
		}
	}
	defer report()
	for ctx.Err() == nil {
		ps := s.client.Subscribe(ctx, s.eventsChannel, s.ownChannel)
		err := s.receive(ctx, ps, report)
		_ = ps.Close()
		if ctx.Err() != nil {
			return
		}
		s.subscribed.Store(false)
		s.subErr.Store(&err)
		s.breaker.trip("the invalidation subscription was lost", err)
		report()
		backoff.Sleep(ctx, s.cfg.ProbeInterval)
	}
}

// receive handles messages until the subscription fails.
func (s *ProductService) receive(ctx context.Context, ps *redis.PubSub, report func()) error {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.pingEvery())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if isTimeout(err) && !pinged && s.subscribed.Load() {
				if err := ps.Ping(ctx); err != nil {
					return err
				}
				pinged = true
				continue
			}
			return err
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Count == 2 {
				s.subscribed.Store(true)
				report()
			}
		case *redis.Message:
			s.handle(ctx, m.Payload)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// handle acts on one message of the subscription.
func (s *ProductService) handle(ctx context.Context, payload string) {
	f := strings.Fields(payload)
	switch {
	case len(f) == 2 && f[0] == "g":
		if g, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			s.adoptGen(g)
			return
		}
	case len(f) == 4 && f[0] == "i":
		if id, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			if s.local != nil {
				s.local.invalidate(id)
			}
			actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
			defer cancel()
			// A lost acknowledgement only makes the writer wait LocalTTL.
			_ = s.client.Publish(actx, s.channelPrefix+f[3], "a "+f[2]).Err()
			return
		}
	case len(f) == 2 && f[0] == "a":
		s.acks.deliver(f[1])
		return
	}
	s.log.WithField("payload", payload).Warn("ignoring a cache message of unknown form")
}

// maintain probes Redis while the breaker is open and renews the in-process
// tier's lease while it is closed, until ctx is done; then it withdraws the
// tier from the registry.
func (s *ProductService) maintain(ctx context.Context) {
	defer s.wg.Done()
	defer s.withdraw()
	tick := s.cfg.ProbeInterval
	if s.local != nil {
		tick = min(tick, s.cfg.LeaseTTL/3)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.breaker.closed() || s.lost.Load() != s.lostHandled {
			if err := s.recover(ctx); err != nil && ctx.Err() == nil {
				s.log.WithError(err).Debug("redis probe failed")
			}
			continue
		}
		if s.local != nil {
			if err := s.renew(ctx); err != nil && ctx.Err() == nil {
				s.breaker.failure(err)
			}
		}
	}
}

// recover brings the instance back to Redis: it settles the generation
// (see recoverScript), renews the in-process tier's lease, and closes the
// breaker. Only a confirmed subscription lets it proceed, so that nothing
// this instance must hear about can be missed from then on.
func (s *ProductService) recover(ctx context.Context) error {
	if !s.subscribed.Load() {
		if last := s.subErr.Load(); last != nil {
			return fmt.Errorf("%w: %w", errNotSubscribed, *last)
		}
		return errNotSubscribed
	}
	lost := s.lost.Load()
	known := s.gen.Load()
	force := lost != s.lostHandled || (known < 0 && s.failedBeforeGen)
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	gen, err := recoverScript.Run(rctx, s.client, []string{s.genKey}, known, boolArg(force), s.eventsChannel).Int64()
	cancel()
	if err != nil {
		return err
	}
	s.lostHandled = lost
	s.adoptGen(gen)
	if s.local != nil {
		s.local.clear()
		if err := s.renew(ctx); err != nil {
			return err
		}
	}
	s.breaker.reset(gen)
	// A loss of either kind while this ran may predate the new generation.
	if !s.subscribed.Load() {
		s.breaker.trip("the invalidation subscription was lost", errNotSubscribed)
	} else if s.lost.Load() != lost {
		s.breaker.trip("an invalidation could not reach redis", nil)
	}
	return nil
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// renew extends the in-process tier's lease in the registry and, once
// Redis has it, lets the tier answer until the lease's end as measured from
// before the request (so never later than the end Redis recorded).
func (s *ProductService) renew(ctx context.Context) error {
	epoch := s.local.epoch()
	sent := s.now()
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := leaseScript.Run(rctx, s.client, []string{s.registryKey}, s.id, s.cfg.LeaseTTL.Milliseconds()).Err(); err != nil {
		return err
	}
	if !s.subscribed.Load() {
		return errNotSubscribed
	}
	s.local.grant(sent+int64(s.cfg.LeaseTTL), epoch)
	return nil
}

// withdraw removes the in-process tier from the registry, so that writers
// stop waiting for it.
func (s *ProductService) withdraw() {
	if s.local == nil {
		return
	}
	s.local.revoke()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	if err := s.client.ZRem(ctx, s.registryKey, s.id).Err(); err != nil {
		s.log.WithFields(logrus.Fields{"instance": s.id}).WithError(err).
			Warn("could not withdraw the in-process tier: writers wait for its lease to end")
	}
}
