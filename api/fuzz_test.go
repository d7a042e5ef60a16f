package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
	"github.com/productd/productd/logging"
)

// recordingService accepts every product that reaches it, so the fuzzer
// exercises decoding and validation alone, without a database.
type recordingService struct {
	productd.ProductService
	created *productd.Product
}

func (s *recordingService) CreateProduct(_ context.Context, p *productd.Product, _ *productd.IdempotencyKey) (*productd.Created, error) {
	s.created = p
	return &productd.Created{Product: p, ProductID: 1, Body: []byte(`{}`)}, nil
}

// FuzzCreateDecoding feeds arbitrary bodies to POST /products: the answer is
// always 201 or a JSON 4xx, never a 5xx or a panic, and whatever reaches the
// store is a valid product.
func FuzzCreateDecoding(f *testing.F) {
	for _, seed := range []string{
		seedBody, `{}`, `[]`, `{"user_id":1,"product_name":"a","product_price":1.5}`,
		`{"user_id":1,"product_name":"a","product_price":-0}`, `{"product_price":1e400}`,
		`{"user_id":1,"product_name":"\u0000","product_price":0.1,"product_images":["http://[::1]/"]}`,
		`{"user_id":9223372036854775808}`, `null`, `"x"`,
	} {
		f.Add(seed)
	}
	svc := &recordingService{}
	srv := api.NewServer(api.Config{Products: svc, Log: logging.Discard(), MaxBodyBytes: 64 << 10})
	f.Fuzz(func(t *testing.T, body string) {
		svc.created = nil
		req := httptest.NewRequest(http.MethodPost, "/products", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusCreated:
			if svc.created == nil {
				t.Fatal("201 without a create")
			}
			if err := svc.created.Validate(); err != nil {
				t.Fatalf("invalid product reached the store: %v", err)
			}
		case rec.Code >= 400 && rec.Code < 500:
			if svc.created != nil {
				t.Fatalf("%d but the product reached the store", rec.Code)
			}
			if !strings.HasPrefix(rec.Body.String(), `{"error":{"code":"`) {
				t.Fatalf("%d with body %q", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
	})
}
