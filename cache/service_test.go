package cache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/internal/redistest"
	"github.com/productd/productd/logging"
)

func TestReadThroughFillsThenHits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := f.open(redistest.URL(), nil)
	p := f.create()

	first := find(t, c, p.ID)
	second := find(t, c, p.ID)
	if first.Name != "lamp" || second.Name != "lamp" || second.Version != p.Version || second.ImagesVersion != p.ImagesVersion {
		t.Fatalf("got %+v then %+v, want the created product", first, second)
	}
	if !second.CreatedAt.Equal(p.CreatedAt) || second.Price != p.Price {
		t.Fatalf("cached product %+v differs from the stored %+v", second, p)
	}
	if n := f.inner.finds.Load(); n != 1 {
		t.Fatalf("database reads = %d, want 1 (the second read is a hit)", n)
	}
	st := c.Stats()
	if st.Misses != 1 || st.Hits != 1 || st.Fills != 1 || st.Breaker != cache.BreakerClosed || st.Generation < 0 {
		t.Fatalf("stats = %+v, want one miss, one fill, one hit, breaker closed", st)
	}

	// A caller changing its copy does not change the cached product.
	second.Images = append(second.Images, "https://example.com/x.jpg")
	second.Name = "changed"
	if again := find(t, c, p.ID); again.Name != "lamp" || len(again.Images) != 0 {
		t.Fatalf("cached product changed through a returned copy: %+v", again)
	}
}

func TestNotFoundIsNotCached(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := f.open(redistest.URL(), nil)
	for range 2 {
		if _, err := c.FindProductByID(context.Background(), 424242); productd.ErrorCode(err) != productd.ENOTFOUND {
			t.Fatalf("err = %v, want not found", err)
		}
	}
	// The product appears under an id a client asked for before: no
	// negative entry may hide it.
	p := f.create()
	if got := find(t, c, p.ID); got.ID != p.ID {
		t.Fatalf("got product %d, want %d", got.ID, p.ID)
	}
}

// TestReadAfterWriteThroughAPI drives the HTTP API over the cache: after
// each write's response, the next GET shows it.
func TestReadAfterWriteThroughAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := f.open(redistest.URL(), nil)
	srv := httptest.NewServer(api.NewServer(api.Config{Products: c, Log: logging.Discard()}))
	t.Cleanup(srv.Close)

	status, body := do(t, srv, http.MethodPost, "/products", `{"user_id":7,"product_name":"chair","product_price":10.50}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	var created productd.Product
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	path := "/products/" + strconv.FormatInt(created.ID, 10)
	for i := range 5 {
		name := fmt.Sprintf("chair %d", i)
		if status, _ := do(t, srv, http.MethodGet, path, ""); status != http.StatusOK { // fills the cache
			t.Fatalf("get: %d", status)
		}
		if status, body := do(t, srv, http.MethodPatch, path, `{"product_name":"`+name+`"}`); status != http.StatusOK {
			t.Fatalf("patch: %d %s", status, body)
		}
		status, body := do(t, srv, http.MethodGet, path, "")
		var got productd.Product
		if err := json.Unmarshal([]byte(body), &got); err != nil || status != http.StatusOK || got.Name != name {
			t.Fatalf("GET after PATCH %d = %d %s, want name %q", i, status, body, name)
		}
	}
	if status, _ := do(t, srv, http.MethodDelete, path, ""); status != http.StatusNoContent {
		t.Fatalf("delete: %d", status)
	}
	if status, body := do(t, srv, http.MethodGet, path, ""); status != http.StatusNotFound {
		t.Fatalf("GET after DELETE = %d %s, want 404", status, body)
	}
	if st := c.Stats(); st.Hits == 0 || st.Invalidations != 6 {
		t.Fatalf("stats = %+v, want hits and 6 invalidations", st)
	}
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestImageResultInvalidates: the image worker writes back through the same
// interface, and the next read shows the compressed URLs.
func TestImageResultInvalidates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := f.open(redistest.URL(), nil)
	p := f.create("https://example.com/a.jpg")
	if got := find(t, c, p.ID); got.ImageStatus != productd.ImageStatusPending {
		t.Fatalf("status = %s, want pending", got.ImageStatus)
	}
	changed, err := c.SetImageResult(context.Background(), productd.ImageResult{
		ProductID: p.ID, ImagesVersion: p.ImagesVersion, Status: productd.ImageStatusDone,
		CompressedImages: []string{"http://127.0.0.1:9000/productd/a-small.jpg"},
	})
	if err != nil || !changed {
		t.Fatalf("set image result: changed=%v err=%v", changed, err)
	}
	got := find(t, c, p.ID)
	if got.ImageStatus != productd.ImageStatusDone || len(got.CompressedImages) != 1 || got.Version != p.Version+1 {
		t.Fatalf("after the worker's write-back read %+v, want done with the compressed URL", got)
	}

	// A stale result changes nothing and invalidates nothing.
	before := c.Stats().Invalidations
	changed, err = c.SetImageResult(context.Background(), productd.ImageResult{ProductID: p.ID, ImagesVersion: p.ImagesVersion - 1, Status: productd.ImageStatusFailed})
	if err != nil || changed || c.Stats().Invalidations != before {
		t.Fatalf("stale result: changed=%v err=%v invalidations %d -> %d", changed, err, before, c.Stats().Invalidations)
	}
}

// TestFailedWritesDoNotInvalidate: a write refused before it reached the
// database cannot have changed anything.
func TestFailedWritesDoNotInvalidate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := f.open(redistest.URL(), nil)
	empty := ""
	if _, err := c.UpdateProduct(context.Background(), 1, productd.ProductUpdate{Name: &empty}); productd.ErrorCode(err) != productd.EUNPROCESSABLE {
		t.Fatalf("err = %v, want unprocessable", err)
	}
	if err := c.DeleteProduct(context.Background(), 999999); productd.ErrorCode(err) != productd.ENOTFOUND {
		t.Fatalf("err = %v, want not found", err)
	}
	if n := c.Stats().Invalidations; n != 0 {
		t.Fatalf("invalidations = %d, want 0", n)
	}
}

// TestPassThrough: lists and creates go to the inner service.
func TestPassThrough(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := f.open(redistest.URL(), nil)
	created, err := c.CreateProduct(context.Background(), &productd.Product{UserID: 3, Name: "desk", Price: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.FindProducts(context.Background(), productd.ProductFilter{})
	if err != nil || len(list) != 1 || list[0].ID != created.ProductID {
		t.Fatalf("list = %v, %v; want the created product", list, err)
	}
}

// TestStaleSetRace reproduces cache-aside's race deterministically: a reader
// misses and reads version 1 from the database; before it stores it, a
// writer commits version 2 and invalidates. The reader's store must be
// refused.
func TestStaleSetRace(t *testing.T) {
	t.Parallel()
	for _, write := range []string{"update", "image result", "delete"} {
		t.Run(write, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			c, _ := f.open(redistest.URL(), nil)
			p := f.create("https://example.com/a.jpg")

			held, release := make(chan struct{}), make(chan struct{})
			f.inner.holdNextFind(func(*productd.Product) { close(held); <-release })
			stale := make(chan *productd.Product, 1)
			go func() {
				got, _ := c.FindProductByID(context.Background(), p.ID)
				stale <- got
			}()
			<-held // the reader has version 1 and has not stored it

			switch write {
			case "update":
				rename(t, c, p.ID, "renamed")
			case "image result":
				if ok, err := c.SetImageResult(context.Background(), productd.ImageResult{ProductID: p.ID, ImagesVersion: p.ImagesVersion, Status: productd.ImageStatusFailed, Error: "x"}); !ok || err != nil {
					t.Fatalf("set image result: %v %v", ok, err)
				}
			case "delete":
				if err := c.DeleteProduct(context.Background(), p.ID); err != nil {
					t.Fatal(err)
				}
			}
			close(release)
			if got := <-stale; got == nil || got.Version != p.Version {
				t.Fatalf("the held reader got %+v, want version %d (it read before the write)", got, p.Version)
			}
			got, err := c.FindProductByID(context.Background(), p.ID)
			switch write {
			case "delete":
				if productd.ErrorCode(err) != productd.ENOTFOUND {
					t.Fatalf("after delete: %+v, %v; want not found", got, err)
				}
			default:
				if err != nil || got.Version != p.Version+1 {
					t.Fatalf("after %s: %+v, %v; want version %d", write, got, err, p.Version+1)
				}
				if got := find(t, c, p.ID); got.Version != p.Version+1 { // now from Redis
					t.Fatalf("cached after %s: version %d, want %d", write, got.Version, p.Version+1)
				}
			}
			if st := c.Stats(); st.FillsRefused != 1 {
				t.Fatalf("stats = %+v, want the held reader's fill refused", st)
			}
		})
	}
}

// TestStampede: concurrent misses of a cold key make one database read.
func TestStampede(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := f.open(redistest.URL(), nil)
	p := f.create()

	const readers = 200
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() {
			<-start
			got, err := c.FindProductByID(context.Background(), p.ID)
			if err == nil && got.ID != p.ID {
				err = fmt.Errorf("got product %d", got.ID)
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.inner.finds.Load(); n != 1 {
		t.Fatalf("%d concurrent reads of a cold key made %d database reads, want 1 (stats %+v)", readers, n, c.Stats())
	}
}

// TestReadAfterCreateDoesNotShareAnEarlierLoad: someone asks for an id before
// it exists and that load is slow; once the create has been answered, a read
// of the id must not share the earlier load (and its 404).
func TestReadAfterCreateDoesNotShareAnEarlierLoad(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := f.open(redistest.URL(), nil)
	const nextID = 1 // the first id of the test's own database

	held, release := make(chan struct{}), make(chan struct{})
	f.inner.holdNextFind(func(*productd.Product) { close(held); <-release })
	early := make(chan error, 1)
	go func() {
		_, err := c.FindProductByID(context.Background(), nextID)
		early <- err
	}()
	<-held // the early load has read "not found" and is not done

	created, err := c.CreateProduct(context.Background(), &productd.Product{UserID: 1, Name: "new", Price: 1}, nil)
	if err != nil || created.ProductID != nextID {
		t.Fatalf("create: %+v, %v; want id %d", created, err, nextID)
	}
	late := make(chan error, 1)
	go func() {
		p, err := c.FindProductByID(context.Background(), nextID)
		if err == nil && p.Name != "new" {
			err = fmt.Errorf("read %q", p.Name)
		}
		late <- err
	}()
	select {
	case err := <-late:
		if err != nil {
			t.Fatalf("read after create: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read after the create waited for the load that began before it")
	}
	close(release)
	if err := <-early; productd.ErrorCode(err) != productd.ENOTFOUND {
		t.Fatalf("the early read got %v, want not found (it began before the create)", err)
	}
}

// TestJSONIsTheProductsJSON: FindProductJSONByID hands out what c.JSON would
// write for FindProductByID's product, on a miss, a Redis hit and a hit of
// the in-process tier.
func TestJSONIsTheProductsJSON(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := f.open(redistest.URL(), withLocal)
	p := f.create("https://example.com/a.jpg")
	want, err := json.Marshal(find(t, f.inner, p.ID))
	if err != nil {
		t.Fatal(err)
	}
	for _, read := range []string{"miss", "redis hit", "local hit"} {
		got, err := c.FindProductJSONByID(context.Background(), p.ID)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s: got %s, %v; want %s", read, got, err, want)
		}
	}
	if st := c.Stats(); st.Misses != 1 || st.Hits != 1 || st.LocalHits != 1 {
		t.Fatalf("stats = %+v, want a miss, a hit and a local hit", st)
	}
	if _, err := c.FindProductJSONByID(context.Background(), p.ID+1); productd.ErrorCode(err) != productd.ENOTFOUND {
		t.Fatalf("err = %v, want not found", err)
	}
}

// TestMissedGenerationIsAdoptedOnFill: an instance that did not hear of a
// new generation finds out when it next stores a product, and reads the new
// generation from then on.
func TestMissedGenerationIsAdoptedOnFill(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := f.open(redistest.URL(), nil)
	p := f.create()
	gen := c.Stats().Generation
	// Moved on behind the instance's back, with no message on the channel.
	if err := redistest.Client(t).Set(context.Background(), f.prefix+"gen", gen+7, 0).Err(); err != nil {
		t.Fatal(err)
	}
	find(t, c, p.ID)
	if st := c.Stats(); st.Generation != gen+7 || st.FillsRefused != 1 {
		t.Fatalf("stats = %+v, want generation %d adopted and the fill refused", st, gen+7)
	}
	find(t, c, p.ID)
	find(t, c, p.ID)
	if st := c.Stats(); st.Fills != 1 || st.Hits != 1 {
		t.Fatalf("stats = %+v, want a fill and a hit in the new generation", st)
	}
}
