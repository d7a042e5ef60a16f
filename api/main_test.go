package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// harness is a server on a database of the test's own.
type harness struct {
	t    *testing.T
	pool *pgxpool.Pool
	srv  *api.Server
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	pool := dbtest.NewPool(t)
	checks := &api.Checks{}
	checks.Add("postgres", func(ctx context.Context) error { return pool.Ping(ctx) })
	srv := api.NewServer(api.Config{Products: db.NewProductService(pool), Log: logging.Discard(), Checks: checks})
	return &harness{t: t, pool: pool, srv: srv}
}

// do sends a request with an optional JSON body and headers given as
// name, value pairs.
func (h *harness) do(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	return rec
}

// create posts body and returns the created product, failing on any status
// but 201.
func (h *harness) create(body string) productd.Product {
	h.t.Helper()
	rec := h.do(http.MethodPost, "/products", body)
	if rec.Code != http.StatusCreated {
		h.t.Fatalf("POST /products = %d %s", rec.Code, rec.Body)
	}
	return decode[productd.Product](h.t, rec)
}

// count returns the number of rows in table.
func (h *harness) count(table string) int {
	h.t.Helper()
	var n int
	if err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		h.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, rec.Body, err)
	}
	return v
}

type errorResponse struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}
