package cache

import (
	"sync"
	"sync/atomic"
)

// localTier keeps the products this instance read from Redis recently, so
// that a hit of a hot product crosses no network.
//
// It may answer only while the instance holds a lease: the instance
// renews it in Redis (the registry) and keeps it only while its subscription
// is live, and writers tell every registered instance about each
// invalidation and wait for its acknowledgement (or, for an instance they
// cannot reach, for its lease to end) before they answer. An entry lives
// LocalTTL from before the Redis read it came from, so an instance that
// neither acknowledges nor loses its lease in time has let the entry expire
// by the time a writer stops waiting.
//
// Times are nanoseconds on the service's monotonic clock.
type localTier struct {
	ttl  int64
	size int

	// lease is the time until which the tier may answer; 0 when it may not.
	lease atomic.Int64
	// revokes counts revocations (under mu), so that a renewal that began
	// before one cannot grant the lease back.
	revokes uint64

	mu sync.RWMutex
	m  map[int64]localEntry
	// seq grows (under mu) with every invalidation and clear, so that a put
	// of a value read from Redis before one of them is refused.
	seq atomic.Uint64
}

type localEntry struct {
	e       *entry
	expires int64
}

func newLocalTier(ttl int64, size int) *localTier {
	return &localTier{ttl: ttl, size: size, m: make(map[int64]localEntry, size)}
}

// get returns the product if the tier may answer and holds it unexpired.
func (l *localTier) get(id, now int64) *entry {
	if now >= l.lease.Load() {
		return nil
	}
	l.mu.RLock()
	le, ok := l.m[id]
	l.mu.RUnlock()
	if !ok || now >= le.expires {
		return nil
	}
	return le.e
}

// snapshot returns the sequence number to hand to put for a value about to
// be read from Redis.
func (l *localTier) snapshot() uint64 { return l.seq.Load() }

// put keeps e, read from Redis at readAt after snapshot returned seq, unless
// anything was invalidated since.
func (l *localTier) put(id int64, e *entry, seq uint64, readAt int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seq.Load() != seq {
		return
	}
	if _, ok := l.m[id]; !ok && len(l.m) >= l.size {
		// Any victim will do: the hottest products come straight back, and
		// the map's random iteration order spreads the evictions.
		for victim := range l.m {
			delete(l.m, victim)
			break
		}
	}
	l.m[id] = localEntry{e: e, expires: readAt + l.ttl}
}

// invalidate drops one product.
func (l *localTier) invalidate(id int64) {
	l.mu.Lock()
	l.seq.Add(1)
	delete(l.m, id)
	l.mu.Unlock()
}

// clear drops every product.
func (l *localTier) clear() {
	l.mu.Lock()
	l.seq.Add(1)
	clear(l.m)
	l.mu.Unlock()
}

// epoch returns the revocation count to hand to grant for a renewal about
// to begin.
func (l *localTier) epoch() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.revokes
}

// grant lets the tier answer until the given time, unless it was revoked
// since epoch returned revokes.
func (l *localTier) grant(until int64, revokes uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.revokes != revokes {
		return false
	}
	l.lease.Store(until)
	return true
}

// revoke stops the tier from answering and empties it.
func (l *localTier) revoke() {
	l.mu.Lock()
	l.revokes++
	l.lease.Store(0)
	l.seq.Add(1)
	clear(l.m)
	l.mu.Unlock()
}

// len returns the number of products held.
func (l *localTier) len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.m)
}
