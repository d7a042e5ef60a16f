package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
	"github.com/productd/productd/logging"
)

// ProductService is a productd.ProductService that serves FindProductByID
// from Redis (and, with Config.Local, from memory) in front of an inner
// service, and invalidates after every write of the inner service returns.
// Other methods go straight to the inner service.
type ProductService struct {
	inner  productd.ProductService
	cfg    Config
	client *redis.Client
	log    *logrus.Entry

	// id names this instance in the registry and on its channel.
	id string
	// Key and channel names, fixed at Open.
	genKey, registryKey, productPrefix, channelPrefix, eventsChannel, ownChannel string

	// base is the origin of now(): monotonic nanoseconds fit in an atomic.
	base time.Time

	// gen is the generation of the product keys; -1 until Redis first answers.
	gen     atomic.Int64
	breaker *breaker
	local   *localTier // nil without Config.Local
	flights flights
	acks    ackWaiters
	stats   counters

	// subscribed is true while the subscription to ownChannel and
	// eventsChannel is confirmed and answering pings.
	subscribed atomic.Bool
	// subErr is the error that ended the last subscription.
	subErr atomic.Pointer[error]
	// lost counts invalidations that did not reach Redis; lostHandled is
	// the count the last recovery moved the generation for.
	lost        atomic.Uint64
	lostHandled uint64
	// sawTiers is set once an invalidation found other instances' in-process
	// tiers, so that this one waits out their leases when Redis is away.
	sawTiers atomic.Bool
	// failedBeforeGen is set when Redis failed before this instance ever
	// learned the generation: it cannot tell pre-outage values apart then.
	failedBeforeGen bool

	firstSub chan struct{}
	cancel   context.CancelFunc
	stopped  <-chan struct{} // closed when the background work stops
	wg       sync.WaitGroup
}

var (
	_ productd.ProductService    = (*ProductService)(nil)
	_ productd.ProductJSONFinder = (*ProductService)(nil)
)

// Open returns a ProductService in front of inner and starts its background
// work (the invalidation subscription, the breaker's probe, the lease of the
// in-process tier), which stops when ctx is done or Close is called. A Redis
// that does not answer is no error: the service starts degraded, reading
// from inner, and switches to Redis once it answers.
func Open(ctx context.Context, inner productd.ProductService, cfg Config) (*ProductService, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &ProductService{
		inner:         inner,
		cfg:           cfg,
		client:        cfg.Client,
		log:           cfg.Log.WithField(logging.FieldComponent, "cache"),
		id:            randomHex(8),
		genKey:        cfg.Prefix + "gen",
		registryKey:   cfg.Prefix + "tiers",
		productPrefix: cfg.Prefix + "p:",
		// Channels, unlike keys, are shared by all of a server's databases.
		channelPrefix: cfg.Prefix + "db" + strconv.Itoa(cfg.Client.Options().DB) + ":inv:",
		eventsChannel: cfg.Prefix + "db" + strconv.Itoa(cfg.Client.Options().DB) + ":events",
		base:          time.Now(),
		firstSub:      make(chan struct{}),
	}
	s.ownChannel = s.channelPrefix + s.id
	s.flights.linger = min(time.Second, cfg.TTL/4)
	s.gen.Store(-1)
	s.breaker = newBreaker(cfg.FailureThreshold, cfg.Log)
	if cfg.Local {
		s.local = newLocalTier(int64(cfg.LocalTTL), cfg.LocalSize)
		s.breaker.onOpen = s.local.revoke
	}

	runCtx, cancel := context.WithCancel(ctx)
	s.cancel, s.stopped = cancel, runCtx.Done()
	s.wg.Add(1)
	go s.subscribe(runCtx)
	select {
	case <-s.firstSub:
	case <-time.After(max(cfg.ProbeInterval, 10*cfg.Timeout)):
	}
	if err := s.recover(runCtx); err != nil {
		s.failedBeforeGen = true
		s.log.WithError(err).Warn("redis unreachable at start: reads go to the database until it answers")
	}
	s.wg.Add(1)
	go s.maintain(runCtx)
	return s, nil
}

// Close stops the background work and withdraws the instance's in-process
// tier from the registry. It does not close the Redis client.
func (s *ProductService) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// ErrClosed is returned by Check once the service has been closed or the
// context given to Open is done.
var ErrClosed = errors.New("cache: closed")

// Check is the cache's readiness check. Redis being unreachable is not a
// failure: the cache then serves from the inner service, and an instance
// that reported itself unready would take availability away for what should
// only cost speed. Only a cache whose background work has stopped fails.
func (s *ProductService) Check(ctx context.Context) error {
	select {
	case <-s.stopped:
		return ErrClosed
	default:
		return nil
	}
}

// BreakerState reports whether reads currently go through Redis.
func (s *ProductService) BreakerState() BreakerState { return s.breaker.state() }

// now returns the time on the service's monotonic clock.
func (s *ProductService) now() int64 { return int64(time.Since(s.base)) }

func (s *ProductService) productKey(gen, id int64) string { return keyOf(s.productPrefix, gen, id) }

// keyOf is the Redis key of product id in generation gen, for a cache whose
// product keys start with productPrefix (Config.Prefix + "p:").
func keyOf(productPrefix string, gen, id int64) string {
	b := make([]byte, 0, len(productPrefix)+24)
	b = append(b, productPrefix...)
	b = strconv.AppendInt(b, gen, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, id, 10)
	return string(b)
}

// FindProductByID returns the product from the in-process tier, Redis, or
// the inner service, in that order.
func (s *ProductService) FindProductByID(ctx context.Context, id int64) (*productd.Product, error) {
	e, err := s.find(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := e.decoded()
	if err != nil {
		return nil, fmt.Errorf("find product %d: %w", id, err)
	}
	return cloneProduct(p), nil
}

// FindProductJSONByID implements productd.ProductJSONFinder: it returns the
// product's JSON exactly as encoding/json (and so Gin's c.JSON) writes it,
// without decoding and encoding it again on a hit. The caller must not
// modify the returned bytes.
func (s *ProductService) FindProductJSONByID(ctx context.Context, id int64) ([]byte, error) {
	e, err := s.find(ctx, id)
	if err != nil {
		return nil, err
	}
	return e.json, nil
}

func (s *ProductService) find(ctx context.Context, id int64) (*entry, error) {
	if s.local != nil {
		if e := s.local.get(id, s.now()); e != nil {
			s.stats.localHits.Add(1)
			return e, nil
		}
	}
	if !s.breaker.closed() {
		return s.fallback(ctx, id)
	}
	gen := s.gen.Load()
	var seq uint64
	if s.local != nil {
		seq = s.local.snapshot()
	}
	readAt := s.now()
	e, token, err := s.get(ctx, gen, id)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err() // the caller gave up; Redis is not to blame
	case err != nil:
		s.breaker.failure(err)
		return s.fallback(ctx, id)
	case e != nil:
		s.stats.hits.Add(1)
		if s.local != nil {
			s.local.put(id, e, seq, readAt)
		}
		return e, nil
	}
	s.stats.misses.Add(1)
	return s.load(ctx, id, gen, token, readAt)
}

// get reads the product from Redis. Without a value it returns the token to
// fill against: the tombstone, or "" for an empty key. An error means Redis
// did not answer.
func (s *ProductService) get(ctx context.Context, gen, id int64) (*entry, string, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	raw, err := s.client.Get(rctx, s.productKey(gen, id)).Bytes()
	cancel()
	if errors.Is(err, redis.Nil) {
		s.breaker.success()
		return nil, "", nil
	} else if err != nil {
		return nil, "", err
	}
	s.breaker.success()
	if isTombstone(raw) {
		return nil, string(raw), nil
	}
	e, err := decodeEntry(raw)
	if err != nil {
		// Stored by something else under our prefix: load and overwrite.
		s.log.WithField(logging.FieldProductID, id).WithError(err).Warn("cache holds an unreadable value")
		return nil, "", nil
	}
	return e, "", nil
}

// load reads a product that Redis does not hold from the inner service,
// once for every caller that saw the same token, and stores it.
func (s *ProductService) load(ctx context.Context, id, gen int64, token string, readAt int64) (*entry, error) {
	return s.flights.do(ctx, flightKey{id: id, gen: gen, token: token}, func() (*entry, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.LoadTimeout)
		defer cancel()
		p, err := s.inner.FindProductByID(lctx, id)
		if err != nil {
			return nil, err
		}
		e, err := newEntry(p)
		if err != nil {
			return nil, err
		}
		// A load slower than LoadTimeout may have outlived a tombstone's
		// guarantee (see fillScript): hand it out, but do not store it.
		if time.Duration(s.now()-readAt) < s.cfg.LoadTimeout {
			s.fill(lctx, id, gen, token, e)
		}
		return e, nil
	})
}

// fill stores e through fillScript, which refuses it when a writer has
// invalidated the product since token was read or a newer version is there.
//
// This is how the cache closes the race of cache-aside (a reader misses and
// loads version 1; a writer commits version 2 and invalidates; the reader
// stores version 1): an invalidation does not delete but writes a tombstone
// with a random token, living as long as a value (TTL); a reader remembers
// the token it missed on (or that the key was empty) and may store only
// while that same token is still there. Any write that committed after the
// reader's load began invalidates after that commit, so its tombstone
// replaces the reader's token and the reader's stale value is refused. Values
// also carry the row's version and never replace a newer one, so two racing
// readers cannot swap a new value for an old one either. Tokens, rather than
// tombstones carrying the new version, let every writer invalidate the same
// way, including SetImageResult and DeleteProduct, which do not return the
// version they wrote.
func (s *ProductService) fill(ctx context.Context, id, gen int64, token string, e *entry) {
	fctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	res, err := fillScript.Run(fctx, s.client, []string{s.genKey, s.productKey(gen, id)},
		gen, token, e.version, e.encode(), s.cfg.TTL.Milliseconds()).Slice()
	if err != nil {
		s.breaker.failure(err)
		return
	}
	s.breaker.success()
	outcome, _ := res[0].(int64)
	switch outcome {
	case 1:
		s.stats.fills.Add(1)
	case -1:
		s.stats.fillsRefused.Add(1)
		if g, err := strconv.ParseInt(res[1].(string), 10, 64); err == nil {
			s.adoptGen(g)
		}
	default:
		s.stats.fillsRefused.Add(1)
	}
}

// fallback reads from the inner service when Redis cannot be asked.
func (s *ProductService) fallback(ctx context.Context, id int64) (*entry, error) {
	s.stats.fallbacks.Add(1)
	return s.flights.do(ctx, flightKey{id: id, fallback: true}, func() (*entry, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.LoadTimeout)
		defer cancel()
		p, err := s.inner.FindProductByID(lctx, id)
		if err != nil {
			return nil, err
		}
		return newEntry(p)
	})
}

// adoptGen switches to generation g; products of the in-process tier came
// from another generation and go.
func (s *ProductService) adoptGen(g int64) {
	if old := s.gen.Swap(g); old != g {
		if s.local != nil {
			s.local.clear()
		}
		s.log.WithFields(logrus.Fields{"from": old, "to": g}).Info("cache generation changed")
	}
}

// FindProducts goes to the inner service: a cached page would have to be
// invalidated by every write to any product that matches its filter, which
// cannot be known without running the query again. Lists stay fast through
// the database's indexes instead.
func (s *ProductService) FindProducts(ctx context.Context, filter productd.ProductFilter) ([]*productd.Product, error) {
	return s.inner.FindProducts(ctx, filter)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on the platforms Go supports
	return hex.EncodeToString(b)
}
