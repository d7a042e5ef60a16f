package cache_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/productd/productd/api"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/internal/redistest"
	"github.com/productd/productd/logging"
)

// TestRedisUnreachable: with Redis gone, GETs answer 200 from Postgres, and
// once the breaker is open they do not try Redis at all.
func TestRedisUnreachable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	proxy := redistest.NewProxy(t)
	c, client := f.open(proxy.URL(), nil)
	gets := &commandCounter{name: "get"}
	client.AddHook(gets)
	srv := httptest.NewServer(api.NewServer(api.Config{Products: c, Log: logging.Discard()}))
	t.Cleanup(srv.Close)
	p := f.create()
	path := "/products/" + strconv.FormatInt(p.ID, 10)
	if status, _ := do(t, srv, http.MethodGet, path, ""); status != http.StatusOK {
		t.Fatalf("GET = %d", status)
	}

	proxy.Cut()
	for i := range 20 {
		status, body := do(t, srv, http.MethodGet, path, "")
		if status != http.StatusOK || !strings.Contains(body, `"product_name":"lamp"`) {
			t.Fatalf("GET %d with redis gone = %d %s, want 200 with the product", i, status, body)
		}
	}
	eventually(t, "the breaker to open", func() bool { return c.BreakerState() == cache.BreakerOpen })
	before := gets.n.Load()
	for range 20 {
		if status, _ := do(t, srv, http.MethodGet, path, ""); status != http.StatusOK {
			t.Fatalf("GET = %d, want 200", status)
		}
	}
	if n := gets.n.Load() - before; n != 0 {
		t.Fatalf("with the breaker open, 20 GETs made %d redis GETs, want 0", n)
	}
	if st := c.Stats(); st.Fallbacks < 20 || st.BreakerOpens != 1 {
		t.Fatalf("stats = %+v, want at least 20 fallbacks and one opening", st)
	}

	proxy.Restore()
	eventually(t, "the breaker to close", func() bool { return c.BreakerState() == cache.BreakerClosed })
	if status, _ := do(t, srv, http.MethodGet, path, ""); status != http.StatusOK || gets.n.Load() == before {
		t.Fatalf("after recovery GET = %d and redis GETs did not resume", status)
	}
}

// TestSlowRedisOpensBreaker: Redis answering slower than Timeout costs the
// first FailureThreshold reads the timeout, and no read after.
func TestSlowRedisOpensBreaker(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	proxy := redistest.NewProxy(t)
	c, client := f.open(proxy.URL(), func(cfg *cache.Config) {
		cfg.Timeout = 100 * time.Millisecond
		cfg.LeaseTTL = 5 * time.Second // pings every 2.5 s answer despite the latency
	})
	gets := &commandCounter{name: "get"}
	client.AddHook(gets)
	p := f.create()
	find(t, c, p.ID)

	proxy.AddLatency("slow", 400)
	before := gets.n.Load()
	for range 10 {
		if got := find(t, c, p.ID); got.ID != p.ID {
			t.Fatalf("got product %d", got.ID)
		}
	}
	if n := gets.n.Load() - before; n > cache.DefaultFailureThreshold {
		t.Fatalf("10 reads tried redis %d times, want at most %d before the breaker opened", n, cache.DefaultFailureThreshold)
	}
	if c.BreakerState() != cache.BreakerOpen {
		t.Fatalf("breaker %s, want open", c.BreakerState())
	}

	proxy.RemoveToxic("slow")
	eventually(t, "the breaker to close", func() bool { return c.BreakerState() == cache.BreakerClosed })
	before = gets.n.Load()
	find(t, c, p.ID)
	if gets.n.Load() == before {
		t.Fatal("reads do not go through redis after recovery")
	}
}

// TestNoStaleEntryAfterOutage: a write during an outage cannot invalidate;
// once Redis is back, the value stored before the outage is never served,
// by the writer or by another instance that never lost Redis.
func TestNoStaleEntryAfterOutage(t *testing.T) {
	t.Parallel()
	for _, tier := range []string{"redis", "local"} {
		t.Run(tier, func(t *testing.T) {
			t.Parallel()
			tweak := func(*cache.Config) {}
			if tier == "local" {
				tweak = withLocal
			}
			testNoStaleEntryAfterOutage(t, tweak)
		})
	}
}

func testNoStaleEntryAfterOutage(t *testing.T, tweak func(*cache.Config)) {
	f := newFixture(t)
	proxy := redistest.NewProxy(t)
	writer, _ := f.open(proxy.URL(), tweak)
	other, _ := f.open(redistest.URL(), tweak)
	p := f.create()
	find(t, writer, p.ID) // version 1 is in Redis
	genBefore := writer.Stats().Generation

	proxy.Cut()
	eventually(t, "the breaker to open", func() bool { return writer.BreakerState() == cache.BreakerOpen })
	rename(t, writer, p.ID, "renamed") // succeeds although its invalidation is lost
	if st := writer.Stats(); st.InvalidationsLost != 1 {
		t.Fatalf("stats = %+v, want one lost invalidation", st)
	}
	if got := find(t, writer, p.ID); got.Name != "renamed" {
		t.Fatalf("during the outage read %q, want the database's %q", got.Name, "renamed")
	}

	// Redis still holds version 1 where it was before the outage.
	oldKey := fmt.Sprintf("%sp:%d:%d", f.prefix, genBefore, p.ID)
	if v := redistest.Client(t).Get(context.Background(), oldKey).Val(); !strings.HasPrefix(v, "V1:") {
		t.Fatalf("redis holds %q under %s, want the value of version 1", v, oldKey)
	}

	proxy.Restore()
	eventually(t, "the breaker to close", func() bool { return writer.BreakerState() == cache.BreakerClosed })
	if got := find(t, writer, p.ID); got.Name != "renamed" {
		t.Fatalf("after the outage the writer read %q, want %q", got.Name, "renamed")
	}
	gen := writer.Stats().Generation
	if gen <= genBefore {
		t.Fatalf("generation %d after the outage, want more than %d", gen, genBefore)
	}
	// The other instance hears of the generation on its subscription.
	eventually(t, "the other instance to adopt the generation", func() bool { return other.Stats().Generation == gen })
	if got := find(t, other, p.ID); got.Name != "renamed" {
		t.Fatalf("after the outage the other instance read %q, want %q", got.Name, "renamed")
	}
}

// TestOutageOfEveryInstance: both instances lose Redis; one of them writes.
// Whichever comes back first must not serve the old value, even before the
// writer has come back.
func TestOutageOfEveryInstance(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	writerProxy, readerProxy := redistest.NewProxy(t), redistest.NewProxy(t)
	writer, _ := f.open(writerProxy.URL(), nil)
	reader, _ := f.open(readerProxy.URL(), nil)
	p := f.create()
	find(t, reader, p.ID)

	writerProxy.Cut()
	readerProxy.Cut()
	eventually(t, "both breakers to open", func() bool {
		return writer.BreakerState() == cache.BreakerOpen && reader.BreakerState() == cache.BreakerOpen
	})
	rename(t, writer, p.ID, "renamed")

	// The reader comes back while the writer is still cut off.
	readerProxy.Restore()
	eventually(t, "the reader's breaker to close", func() bool { return reader.BreakerState() == cache.BreakerClosed })
	if got := find(t, reader, p.ID); got.Name != "renamed" {
		t.Fatalf("the reader read %q after its own recovery, want %q", got.Name, "renamed")
	}
	writerProxy.Restore()
	eventually(t, "the writer's breaker to close", func() bool { return writer.BreakerState() == cache.BreakerClosed })
	if got := find(t, writer, p.ID); got.Name != "renamed" {
		t.Fatalf("the writer read %q after recovery, want %q", got.Name, "renamed")
	}
}

// TestStartWithRedisDown: productd starts although Redis is away, reads
// from the database, and uses Redis once it answers, in a new generation
// since it cannot tell what the one it finds missed.
func TestStartWithRedisDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin := redistest.Client(t)
	if err := admin.Set(context.Background(), f.prefix+"gen", 5, 0).Err(); err != nil {
		t.Fatal(err)
	}
	proxy := redistest.NewProxy(t)
	proxy.Cut()
	c, _ := f.open(proxy.URL(), nil)
	if c.BreakerState() != cache.BreakerOpen {
		t.Fatalf("breaker %s with redis down at start, want open", c.BreakerState())
	}
	if err := c.Check(context.Background()); err != nil {
		t.Fatalf("readiness with redis down = %v, want ready (degraded)", err)
	}
	p := f.create()
	if got := find(t, c, p.ID); got.ID != p.ID {
		t.Fatalf("got product %d", got.ID)
	}

	proxy.Restore()
	eventually(t, "the breaker to close", func() bool { return c.BreakerState() == cache.BreakerClosed })
	if gen := c.Stats().Generation; gen != 6 {
		t.Fatalf("generation %d, want 6 (moved on from the 5 found)", gen)
	}
	find(t, c, p.ID)
	find(t, c, p.ID)
	if st := c.Stats(); st.Hits != 1 || st.Fills != 1 {
		t.Fatalf("stats = %+v, want a fill and a hit after recovery", st)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(context.Background()); err != cache.ErrClosed {
		t.Fatalf("readiness after Close = %v, want ErrClosed", err)
	}
}
