package api_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
)

// An Idempotency-Key that the database cannot hold is the client's mistake:
// 400, and nothing is written, not even an uploaded original.
func TestIdempotencyKeyRefused(t *testing.T) {
	t.Parallel()
	h := newUploadHarness(t, api.Config{})
	for name, key := range map[string]string{
		"not UTF-8":           "k-\xff\xfe",
		"cut UTF-8":           "k-\xe2\x82",
		"a control character": "k-\x01-1",
		"256 characters":      strings.Repeat("é", 256),
	} {
		for _, rec := range []*httptest.ResponseRecorder{
			h.do(http.MethodPost, "/products", seedBody, api.IdempotencyKeyHeader, key),
			h.send(http.MethodPost, "/products", []string{api.IdempotencyKeyHeader, key},
				append(slices.Clone(productFields), part{name: "product_images", filename: "a.png", value: pngFile(t, 1)})...),
		} {
			if rec.Code != http.StatusBadRequest {
				t.Errorf("%s: status %d %s, want 400", name, rec.Code, rec.Body)
				continue
			}
			if e := decode[errorResponse](t, rec); e.Error.Code != productd.EINVALID || !strings.Contains(e.Error.Message, api.IdempotencyKeyHeader) {
				t.Errorf("%s: error %+v", name, e.Error)
			}
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/products", strings.NewReader(seedBody))
	req.Header.Add(api.IdempotencyKeyHeader, "k-1")
	req.Header.Add(api.IdempotencyKeyHeader, "k-2")
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("two keys: status %d %s, want 400", rec.Code, rec.Body)
	}
	if n, e, k, o := h.count("products"), h.count("outbox"), h.count("idempotency_keys"), len(h.originals()); n+e+k+o != 0 {
		t.Errorf("refused requests wrote %d products, %d outbox rows, %d keys, %d originals", n, e, k, o)
	}

	// Up to 255 characters of any language are a key.
	if rec := h.do(http.MethodPost, "/products", seedBody, api.IdempotencyKeyHeader, strings.Repeat("é", 255)); rec.Code != http.StatusCreated {
		t.Errorf("255 characters: status %d %s, want 201", rec.Code, rec.Body)
	}
}

// Keys are scoped by user_id: two clients that pick the same key each get
// their own product, and each one's retry replays its own.
func TestIdempotencyKeyScopedByUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	alice := strings.Replace(seedBody, `"user_id":1`, `"user_id":11`, 1)
	bob := strings.Replace(strings.Replace(seedBody, `"user_id":1`, `"user_id":12`, 1), "Laptop", "Phone", 1)
	first := map[string]string{}
	for round := range 2 {
		for who, body := range map[string]string{"alice": alice, "bob": bob} {
			rec := h.do(http.MethodPost, "/products", body, api.IdempotencyKeyHeader, "order-1")
			if rec.Code != http.StatusCreated {
				t.Fatalf("%s, round %d: status %d %s", who, round, rec.Code, rec.Body)
			}
			replayed := rec.Header().Get("Idempotent-Replayed") == "true"
			if round == 0 {
				if replayed {
					t.Errorf("%s's first request was answered with another's response: %s", who, rec.Body)
				}
				first[who] = rec.Body.String()
			} else if !replayed || rec.Body.String() != first[who] {
				t.Errorf("%s's retry = %s (replayed %v), want %s", who, rec.Body, replayed, first[who])
			}
		}
	}
	if first["alice"] == first["bob"] {
		t.Errorf("both clients got %s", first["alice"])
	}
	if n, k := h.count("products"), h.count("idempotency_keys"); n != 2 || k != 2 {
		t.Errorf("%d products and %d keys, want 2 and 2", n, k)
	}
}
