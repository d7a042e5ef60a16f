// Package loadgen creates products through productd's public API at a given
// rate, follows each to its end, and reports what it saw: creates a second,
// create latency and create-to-done latency (p50, p95, p99), and failures by
// reason.
//
// Products get image URLs served by an image server the load generator runs
// on loopback (see ImageServer), a share of them an uploaded image instead,
// and a share an image that is not usable, which must end failed. Every
// product of a run carries the run's user_id, so that the load generator
// follows them through the product list, page by page, without a request
// per product. A create that gets no answer or a 5xx is retried with the
// same Idempotency-Key, as a careful client would: a product is counted once
// however often its create was sent.
//
// `productd load` runs it from the command line; the chaos suite runs it
// under every fault.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	mrand "math/rand/v2"
	"sync"
	"time"
)

// runner is one run's state.
type runner struct {
	cfg     Config
	runID   string
	userID  int64
	images  *ImageServer
	tracker *tracker
	stats   counters
}

// Run creates products as cfg says until Count products were started,
// Duration has passed or ctx ends, then follows them until they settle or
// FollowFor has passed, and returns the report. It fails only for bad
// settings or an image server that cannot start: what goes wrong with the
// products is the report's business.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, runID: randomID(), userID: cfg.UserID, tracker: newTracker()}
	if r.userID == 0 {
		n, _ := rand.Int(rand.Reader, big.NewInt(1<<40))
		r.userID = 1_000_000 + n.Int64()
	}
	r.images = cfg.Images
	if r.images == nil {
		srv, err := NewImageServer("")
		if err != nil {
			return nil, err
		}
		defer srv.Close()
		r.images = srv
	}

	begin := time.Now()
	stopProgress := r.reportProgress(begin)
	createCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		createCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	created := make(chan struct{})
	var followers sync.WaitGroup
	followers.Go(func() { r.follow(ctx, created) })
	products, creating := r.createAll(ctx, createCtx)
	close(created)
	followers.Wait()
	stopProgress()

	report := summarise(products, creating, r.stats.retried.Load(), cfg.KeepProducts)
	report.UserID = r.userID
	return report, nil
}

// createAll starts creates on the schedule Rate sets, with at most
// Concurrency in flight, until Count or createCtx says stop. Creates in
// flight then finish (within RetryFor, or when ctx ends).
func (r *runner) createAll(ctx, createCtx context.Context) ([]*Product, time.Duration) {
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 7))
	slots := make(chan struct{}, r.cfg.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var products []*Product
	begin := time.Now()
	for seq := int64(1); r.cfg.Count == 0 || seq <= int64(r.cfg.Count); seq++ {
		if r.cfg.Rate > 0 {
			due := begin.Add(time.Duration(float64(seq-1) / r.cfg.Rate * float64(time.Second)))
			select {
			case <-createCtx.Done():
			case <-time.After(time.Until(due)):
			}
		}
		select {
		case <-createCtx.Done():
		case slots <- struct{}{}:
		}
		if createCtx.Err() != nil {
			break
		}
		req, err := r.newRequest(seq, rng)
		if err != nil {
			<-slots
			break
		}
		mu.Lock()
		products = append(products, req.product)
		mu.Unlock()
		r.stats.started.Add(1)
		wg.Go(func() {
			defer func() { <-slots }()
			r.create(ctx, req)
			if req.product.ID != 0 {
				r.tracker.add(req.product)
				r.stats.created.Add(1)
			} else {
				r.stats.refused.Add(1)
			}
		})
	}
	wg.Wait()
	return products, time.Since(begin)
}

// reportProgress writes a progress line every ProgressInterval until the
// returned function is called.
func (r *runner) reportProgress(begin time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(r.cfg.ProgressInterval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				r.progress(r.cfg.Progress, time.Since(begin))
				return
			case <-tick.C:
				r.progress(r.cfg.Progress, time.Since(begin))
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
