package cache

import (
	"context"
	"sync"
	"time"
)

// flights makes concurrent misses of one product share a single load from
// the inner service.
//
// It is not golang.org/x/sync/singleflight because that lets a caller join a
// load that began before the caller arrived, and such a load may have read
// the row before a write that the caller's client has already been answered
// for. Who may join is decided by the key:
//
//   - When Redis answered the miss, the key holds the token the caller saw
//     (the tombstone, or nothing). A writer replaces the tombstone after its
//     commit and before it answers, so callers that saw the same token all
//     looked after the same last acknowledged write, and any load among them
//     started after it. An empty token is shared the same way: the key can
//     only have gone empty again after a tombstone outlived TTL, far longer
//     than any load may take (LoadTimeout). For the same reason a load that
//     succeeded stays joinable for linger after it ended, so that a caller
//     that missed just before it stored the product need not load again.
//   - When Redis could not be asked (the fallback), nothing tells the callers
//     apart, so a caller joins only a load that has not begun; otherwise it
//     starts the next one, which waits for the running one to end. Loads of
//     one key still run one at a time, and every caller gets a row read after
//     it arrived.
type flights struct {
	linger time.Duration

	mu sync.Mutex
	m  map[flightKey]*flight
}

type flightKey struct {
	id       int64
	gen      int64
	token    string
	fallback bool
}

type flight struct {
	done    chan struct{}
	prev    *flight // the load this one waits for (fallback only)
	loading bool    // set under flights.mu once the load has begun
	e       *entry
	err     error
}

// do returns the result of a load for key, started by this call or shared
// with others as described above. load runs in its own goroutine so that a
// caller that gives up (ctx) does not cancel it for the others.
func (g *flights) do(ctx context.Context, key flightKey, load func() (*entry, error)) (*entry, error) {
	g.mu.Lock()
	f := g.m[key]
	if f == nil || (key.fallback && f.loading) {
		f = &flight{done: make(chan struct{}), prev: f}
		if g.m == nil {
			g.m = make(map[flightKey]*flight)
		}
		g.m[key] = f
		go g.run(key, f, load)
	}
	g.mu.Unlock()
	select {
	case <-f.done:
		return f.e, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *flights) run(key flightKey, f *flight, load func() (*entry, error)) {
	if f.prev != nil {
		<-f.prev.done
		f.prev = nil
	}
	g.mu.Lock()
	f.loading = true
	g.mu.Unlock()

	f.e, f.err = load()
	close(f.done)

	forget := func() {
		g.mu.Lock()
		if g.m[key] == f {
			delete(g.m, key)
		}
		g.mu.Unlock()
	}
	if key.fallback || f.err != nil || g.linger <= 0 {
		forget()
		return
	}
	time.AfterFunc(g.linger, forget)
}
