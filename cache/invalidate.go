package cache

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
	"github.com/productd/productd/logging"
)

// CreateProduct creates through the inner service and then writes a
// tombstone for the new id. The cache stores no "not found" answers, but a
// load of the id may be under way (someone asked for it before it existed),
// and a reader whose client already has the 201 must not share that load:
// the tombstone gives it another token (see flights). No in-process tier
// can hold the new id, so none is told.
func (s *ProductService) CreateProduct(ctx context.Context, p *productd.Product, key *productd.IdempotencyKey) (*productd.Created, error) {
	created, err := s.inner.CreateProduct(ctx, p, key)
	if err == nil && !created.Replayed {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
		defer cancel()
		if _, err := s.runInvalidate(ctx, created.ProductID, ""); err != nil {
			// Nothing is stored for the id; only a load in flight elsewhere
			// could be shared, which is no reason to retire a generation.
			s.breaker.failure(err)
		}
	}
	return created, err
}

// UpdateProduct updates through the inner service and then invalidates the
// product, before the caller can answer its client.
func (s *ProductService) UpdateProduct(ctx context.Context, id int64, upd productd.ProductUpdate) (*productd.Product, error) {
	p, err := s.inner.UpdateProduct(ctx, id, upd)
	if mayHaveWritten(err) {
		s.invalidate(ctx, id)
	}
	return p, err
}

// DeleteProduct deletes through the inner service and then invalidates the
// product. The tombstone keeps a slow reader from storing the deleted row.
func (s *ProductService) DeleteProduct(ctx context.Context, id int64) error {
	err := s.inner.DeleteProduct(ctx, id)
	if mayHaveWritten(err) {
		s.invalidate(ctx, id)
	}
	return err
}

// SetImageResult records the image worker's result through the inner
// service and invalidates the product when it changed.
func (s *ProductService) SetImageResult(ctx context.Context, res productd.ImageResult) (bool, error) {
	changed, err := s.inner.SetImageResult(ctx, res)
	if changed || (err != nil && mayHaveWritten(err)) {
		s.invalidate(ctx, res.ProductID)
	}
	return changed, err
}

// StartImageRun records the run through the inner service and invalidates
// the product when it started: the status may have become processing.
func (s *ProductService) StartImageRun(ctx context.Context, productID, imagesVersion int64) (productd.ImageRun, error) {
	run, err := s.inner.StartImageRun(ctx, productID, imagesVersion)
	if run.Started || (err != nil && mayHaveWritten(err)) {
		s.invalidate(ctx, productID)
	}
	return run, err
}

// FinishImageRun passes through: it changes nothing a reader sees.
func (s *ProductService) FinishImageRun(ctx context.Context, productID, imagesVersion int64) error {
	return s.inner.FinishImageRun(ctx, productID, imagesVersion)
}

// RescheduleImages schedules the images again through the inner service
// and invalidates the product: its status and version changed.
func (s *ProductService) RescheduleImages(ctx context.Context, r productd.Reschedule) (*productd.Product, error) {
	p, err := s.inner.RescheduleImages(ctx, r)
	if mayHaveWritten(err) {
		s.invalidate(ctx, r.ProductID)
	}
	return p, err
}

// mayHaveWritten reports whether a write that returned err may have
// committed. An internal or unavailable error can come after the commit
// (a lost connection while it was acknowledged), so it invalidates too: an
// invalidation too many costs one miss, one too few a stale read.
func mayHaveWritten(err error) bool {
	switch productd.ErrorCode(err) {
	case "", productd.EINTERNAL, productd.EUNAVAILABLE:
		return true
	}
	return false
}

// invalidate replaces the product's value in Redis with a fresh tombstone
// and waits until no in-process tier of any instance can still answer with
// the old value. It never fails the write: when Redis cannot be reached the
// breaker opens, the loss is counted, and the next recovery moves the
// generation on so that no value from before it is served again.
func (s *ProductService) invalidate(ctx context.Context, id int64) {
	s.stats.invalidations.Add(1)
	// The write has committed: its client going away must not stop this.
	ctx = context.WithoutCancel(ctx)
	msgID := strconv.FormatUint(rand.Uint64(), 36)
	waiter := s.acks.register(msgID)
	defer s.acks.remove(msgID)

	ictx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	res, err := s.runInvalidate(ictx, id, "i "+strconv.FormatInt(id, 10)+" "+msgID+" "+s.id)
	cancel()
	if err != nil {
		s.lost.Add(1)
		s.stats.invalidationsLost.Add(1)
		s.log.WithField(logging.FieldProductID, id).WithError(err).
			Warn("invalidation could not reach redis: the generation moves on when it answers again")
		s.breaker.trip("an invalidation could not reach redis", err)
		// If Redis is away for every instance, their tiers stop answering
		// once their leases end, and this write must not be answered before.
		// After two lease lengths of outage they all have; and an instance
		// that still reaches Redis renews its lease however long one waits,
		// which leaves it to the generation move on recovery.
		if (s.local != nil || s.sawTiers.Load()) && s.breaker.openFor() < 2*s.cfg.LeaseTTL {
			time.Sleep(s.cfg.LeaseTTL)
		}
		return
	}
	gen, told, leaseWait := res[0], res[1], time.Duration(res[2])*time.Millisecond
	if s.gen.Load() != gen {
		s.adoptGen(gen)
	}
	if told == 0 && leaseWait == 0 {
		return
	}
	s.sawTiers.Store(true)
	leaseDeadline := time.Now().Add(leaseWait)
	if !waiter.wait(int32(told), s.cfg.LocalTTL) {
		// A tier that did not acknowledge in LocalTTL has let the entry
		// expire by now: it was read before the tombstone was written.
		s.log.WithFields(logrus.Fields{logging.FieldProductID: id, "told": told, "acknowledged": waiter.n.Load()}).
			Warn("not every in-process tier acknowledged an invalidation in time")
	}
	if d := time.Until(leaseDeadline); d > 0 {
		time.Sleep(d)
	}
}

// runInvalidate runs invalidateScript for id; the in-process tiers hear of
// it unless message is empty.
func (s *ProductService) runInvalidate(ctx context.Context, id int64, message string) ([]int64, error) {
	return invalidateScript.Run(ctx, s.client, []string{s.genKey, s.registryKey},
		s.productPrefix, id, tombstone(), s.cfg.TTL.Milliseconds(), s.channelPrefix, message).Int64Slice()
}

// tombstone returns a value no invalidation has written before.
func tombstone() string {
	return string(tombstoneMark) + strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36)
}

// ackWaiters routes acknowledgements of invalidations, which arrive on the
// instance's channel, to the writers waiting for them.
type ackWaiters struct {
	mu sync.Mutex
	m  map[string]*ackWaiter
}

type ackWaiter struct {
	n      atomic.Int32
	signal chan struct{}
}

func (a *ackWaiters) register(msgID string) *ackWaiter {
	w := &ackWaiter{signal: make(chan struct{}, 1)}
	a.mu.Lock()
	if a.m == nil {
		a.m = make(map[string]*ackWaiter)
	}
	a.m[msgID] = w
	a.mu.Unlock()
	return w
}

func (a *ackWaiters) remove(msgID string) {
	a.mu.Lock()
	delete(a.m, msgID)
	a.mu.Unlock()
}

func (a *ackWaiters) deliver(msgID string) {
	a.mu.Lock()
	w := a.m[msgID]
	a.mu.Unlock()
	if w == nil {
		return // the writer stopped waiting
	}
	w.n.Add(1)
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// wait returns true once want acknowledgements have arrived, or false after
// timeout.
func (w *ackWaiter) wait(want int32, timeout time.Duration) bool {
	if w.n.Load() >= want {
		return true
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for w.n.Load() < want {
		select {
		case <-w.signal:
		case <-timer.C:
			return w.n.Load() >= want
		}
	}
	return true
}
