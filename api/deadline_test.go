package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
)

// answerWithin bounds how long these tests wait for an answer that a
// request without a deadline would never give; a request with one answers
// within a second of its deadline.
const answerWithin = 20 * time.Second

// testQueryTimeout is the servers' deadline in these tests: short, so that
// they run fast, and no figure is asserted about it.
const testQueryTimeout = 300 * time.Millisecond

// serve sends req to srv and returns its answer, failing t when none comes
// within answerWithin.
func serve(t *testing.T, srv http.Handler, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
		return rec
	case <-time.After(answerWithin):
		t.Fatalf("%s %s: no answer within %v: the request has no deadline", req.Method, req.URL, answerWithin)
		return nil
	}
}

// A request whose statements wait on a lock gets 503 at its deadline, and
// the deadline reaches Postgres: the statements stop waiting on the server
// too, and a create that was cut short wrote nothing.
func TestRequestDeadlineReachesPostgres(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv := api.NewServer(api.Config{Products: db.NewProductService(h.pool), Log: logging.Discard(), QueryTimeout: testQueryTimeout})
	p := h.create(seedBody)
	path := "/products/" + strconv.FormatInt(p.ID, 10)

	ctx := context.Background()
	unlock := dbtest.LockTable(t, h.pool, "products")
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/products?product_name=laptop", nil),
		httptest.NewRequest(http.MethodGet, path, nil),
		jsonRequest(http.MethodPost, "/products", seedBody),
		jsonRequest(http.MethodPatch, path, `{"product_price":1}`),
		httptest.NewRequest(http.MethodDelete, path, nil),
	} {
		rec := serve(t, srv, req)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s behind a lock = %d %s, want 503 with Retry-After", req.Method, req.URL, rec.Code, rec.Body)
		}
		if e := decode[errorResponse](t, rec); e.Error.Code != productd.EUNAVAILABLE {
			t.Errorf("%s %s: error %+v", req.Method, req.URL, e.Error)
		}
		// The server gave up the statement: nothing waits on the lock.
		var waiting int
		deadline := time.Now().Add(answerWithin)
		for {
			err := h.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
			if err != nil {
				t.Fatal(err)
			}
			if waiting == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s %s: %d statements still wait on the lock in Postgres after the request ended", req.Method, req.URL, waiting)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	unlock()
	if n, e := h.count("products"), h.count("outbox"); n != 1 || e != 1 {
		t.Errorf("after the requests cut short: %d products, %d outbox rows; want 1 and 1", n, e)
	}
	if rec := serve(t, srv, httptest.NewRequest(http.MethodGet, path, nil)); rec.Code != http.StatusOK {
		t.Errorf("GET after the lock = %d %s", rec.Code, rec.Body)
	}
}

// Waiting for a pooled connection counts against the deadline: with the
// pool exhausted, a request gets 503 instead of waiting for ever.
func TestRequestDeadlineBoundsPoolWait(t *testing.T) {
	t.Parallel()
	pool, err := db.Open(context.Background(), dbtest.New(t)+"&pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	srv := api.NewServer(api.Config{Products: db.NewProductService(pool), Log: logging.Discard(), QueryTimeout: testQueryTimeout})
	held, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rec := serve(t, srv, httptest.NewRequest(http.MethodGet, "/products", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("GET /products with the pool exhausted = %d %s, want 503", rec.Code, rec.Body)
	}
	held.Release()
	if rec := serve(t, srv, httptest.NewRequest(http.MethodGet, "/products", nil)); rec.Code != http.StatusOK {
		t.Errorf("GET /products with a connection free = %d %s", rec.Code, rec.Body)
	}
}

func jsonRequest(method, path, body string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}
