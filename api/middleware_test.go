package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
	"github.com/productd/productd/logging"
)

// panickingService fails every read in the two ways a handler can: a panic
// and an internal error.
type panickingService struct{ productd.ProductService }

func (panickingService) FindProductByID(_ context.Context, id int64) (*productd.Product, error) {
	switch id {
	case 1:
		panic("boom")
	case 3:
		return nil, productd.Errorf(productd.EUNAVAILABLE, "The database is unavailable; retry later.")
	}
	return nil, context.DeadlineExceeded
}

func TestRequestIDAndAccessLog(t *testing.T) {
	t.Parallel()
	log, hook := test.NewNullLogger()
	srv := api.NewServer(api.Config{Products: panickingService{}, Log: log})
	get := func(path, requestID string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if requestID != "" {
			req.Header.Set(api.RequestIDHeader, requestID)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec
	}

	rec := get("/healthz", "client-id-1")
	if got := rec.Header().Get(api.RequestIDHeader); got != "client-id-1" {
		t.Errorf("echoed request id = %q", got)
	}
	line := hook.LastEntry()
	if line.Message != "request" || line.Data["request_id"] != "client-id-1" || line.Data["route"] != "/healthz" ||
		line.Data["status"] != 200 || line.Data["duration_ms"] == nil || line.Level != logrus.InfoLevel {
		t.Errorf("access line = %v %v", line.Level, line.Data)
	}

	// An id that could forge log lines is replaced by a generated one.
	for _, bad := range []string{"evil\nid", strings.Repeat("x", 129)} {
		rec := get("/healthz", bad)
		if got := rec.Header().Get(api.RequestIDHeader); got == bad || len(got) != 24 {
			t.Errorf("request id %q kept or badly generated: %q", bad, got)
		}
	}

	// A panic becomes a logged 500 with the JSON error body, and the id ties
	// the panic to the access line.
	rec = get("/products/1", "panic-id")
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"code":"internal"`) {
		t.Errorf("panic answered %d %s", rec.Code, rec.Body)
	}
	var panicLogged bool
	for _, e := range hook.AllEntries() {
		if e.Message == "handler panicked" && e.Data["request_id"] == "panic-id" {
			panicLogged = true
		}
	}
	if !panicLogged {
		t.Error("panic not logged with its request id")
	}
	if last := hook.LastEntry(); last.Level != logrus.ErrorLevel || last.Data["product_id"] != int64(1) {
		t.Errorf("access line of the panic = %v %v", last.Level, last.Data)
	}

	// An internal error is logged with its cause; the client sees no detail.
	rec = get("/products/2", "")
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "deadline") {
		t.Errorf("internal error answered %d %s", rec.Code, rec.Body)
	}
	var causeLogged bool
	for _, e := range hook.AllEntries() {
		if e.Message == "request failed" && strings.Contains(e.Data["error"].(string), "deadline") {
			causeLogged = true
		}
	}
	if !causeLogged {
		t.Error("internal error's cause not logged")
	}

	// An outage is a 503 the client may retry.
	rec = get("/products/3", "")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("outage answered %d with headers %v", rec.Code, rec.Header())
	}
}

// rawService hands out encoded products, as the cache does.
type rawService struct{ productd.ProductService }

func (rawService) FindProductJSONByID(_ context.Context, id int64) ([]byte, error) {
	if id == 1 {
		return []byte(`{"id":1,"cached":true}`), nil
	}
	return nil, productd.Errorf(productd.ENOTFOUND, "product %d not found", id)
}

func TestGetSendsEncodedProductsAsTheyAre(t *testing.T) {
	t.Parallel()
	srv := api.NewServer(api.Config{Products: rawService{}, Log: logging.Discard()})
	h := &harness{t: t, srv: srv}
	if rec := h.do(http.MethodGet, "/products/1", ""); rec.Code != http.StatusOK || rec.Body.String() != `{"id":1,"cached":true}` ||
		rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("GET = %d %q %q", rec.Code, rec.Body, rec.Header().Get("Content-Type"))
	}
	if rec := h.do(http.MethodGet, "/products/2", ""); rec.Code != http.StatusNotFound {
		t.Errorf("GET missing = %d", rec.Code)
	}
}
