package cache_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/productd/productd"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/internal/redistest"
	"github.com/productd/productd/logging"
)

// countingService wraps the real database service, counts its reads, and
// can hold a read between the database and the cache.
type countingService struct {
	productd.ProductService
	finds atomic.Int64

	mu sync.Mutex
	// afterFind, when set, runs after the database read and before the
	// product is handed back to the cache; it is cleared once it ran.
	afterFind func(p *productd.Product)
}

func (c *countingService) FindProductByID(ctx context.Context, id int64) (*productd.Product, error) {
	c.finds.Add(1)
	p, err := c.ProductService.FindProductByID(ctx, id)
	c.mu.Lock()
	hook := c.afterFind
	c.afterFind = nil
	c.mu.Unlock()
	if hook != nil {
		hook(p)
	}
	return p, err
}

func (c *countingService) holdNextFind(hook func(p *productd.Product)) {
	c.mu.Lock()
	c.afterFind = hook
	c.mu.Unlock()
}

// fixture is one test's database, Redis prefix and inner service.
type fixture struct {
	t      *testing.T
	inner  *countingService
	prefix string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool := dbtest.NewPool(t)
	return &fixture{t: t, inner: &countingService{ProductService: db.NewProductService(pool)}, prefix: redistest.Prefix(t)}
}

// commandCounter counts the commands of one name a client sends.
type commandCounter struct {
	name string
	n    atomic.Int64
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == c.name {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// open starts a cache instance on the fixture's prefix through url (the
// real Redis, or a proxy), closed when the test ends. tweak may change the
// configuration first. Timeout defaults to a second: the race detector and
// the other packages' tests share two cores, and tests that are not about
// timeouts must not fall back because a GET took 100 ms.
func (f *fixture) open(url string, tweak func(*cache.Config)) (*cache.ProductService, *redis.Client) {
	f.t.Helper()
	cfg := cache.Config{Log: logging.Discard(), Prefix: f.prefix, Timeout: time.Second, ProbeInterval: 50 * time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	client, err := cache.NewClient(url, cfg.Timeout)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = client.Close() })
	cfg.Client = client
	c, err := cache.Open(context.Background(), f.inner, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = c.Close() })
	return c, client
}

func withLocal(cfg *cache.Config) { cfg.Local = true }

// create stores a product straight in the database.
func (f *fixture) create(images ...string) *productd.Product {
	f.t.Helper()
	p := &productd.Product{UserID: 1, Name: "lamp", Description: "a lamp", Price: 1999, Images: images}
	if _, err := f.inner.ProductService.CreateProduct(context.Background(), p, nil); err != nil {
		f.t.Fatalf("create product: %v", err)
	}
	return p
}

// find reads through c and fails the test on an error.
func find(t *testing.T, c productd.ProductService, id int64) *productd.Product {
	t.Helper()
	p, err := c.FindProductByID(context.Background(), id)
	if err != nil {
		t.Fatalf("find product %d: %v", id, err)
	}
	return p
}

func rename(t *testing.T, c productd.ProductService, id int64, name string) *productd.Product {
	t.Helper()
	p, err := c.UpdateProduct(context.Background(), id, productd.ProductUpdate{Name: &name})
	if err != nil {
		t.Fatalf("update product %d: %v", id, err)
	}
	return p
}

// eventually polls cond until it holds or fails the test after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
