package api_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/internal/s3test"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/uploads"
)

// A create whose transaction fails before it commits removes its uploads.
func TestUploadsOfAFailedCreateAreRemoved(t *testing.T) {
	t.Parallel()
	h := newUploadHarness(t, api.Config{})
	if _, err := h.pool.Exec(context.Background(), `
		CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'insert refused by test'; END $$;
		CREATE TRIGGER fail_insert BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION fail_insert();`); err != nil {
		t.Fatal(err)
	}
	rec := h.send(http.MethodPost, "/products", nil, append(slices.Clone(productFields),
		part{name: "product_images", filename: "a.png", value: pngFile(t, 1)})...)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("POST with the outbox refusing = %d %s", rec.Code, rec.Body)
	}
	if left := h.originals(); len(left) != 0 {
		t.Fatalf("the failed create left %v", left)
	}
	if n := h.count("uploads"); n != 0 {
		t.Fatalf("the failed create left %d upload rows", n)
	}
}

// lostCommit is a product service whose create commits but whose caller
// hears an error, as when the connection drops while the commit is
// acknowledged.
type lostCommit struct{ productd.ProductService }

func (l lostCommit) CreateProduct(ctx context.Context, p *productd.Product, key *productd.IdempotencyKey) (*productd.Created, error) {
	if _, err := l.ProductService.CreateProduct(ctx, p, key); err != nil {
		return nil, err
	}
	return nil, productd.Errorf(productd.EUNAVAILABLE, "The database is unavailable; retry later.")
}

// A create that committed never loses its uploads, even when the API
// could not tell: the product owns them, and they serve.
func TestUploadsOfACommittedCreateStay(t *testing.T) {
	t.Parallel()
	pool, store := dbtest.NewPool(t), s3test.New(t)
	srv := api.NewServer(api.Config{
		Products:  lostCommit{db.NewProductService(pool)},
		Originals: uploads.New(uploads.Config{}, pool, store, logging.Discard()),
		Log:       logging.Discard(),
	})
	h := &uploadHarness{harness: &harness{t: t, pool: pool, srv: srv}, store: store}
	rec := h.send(http.MethodPost, "/products", nil, append(slices.Clone(productFields),
		part{name: "product_images", filename: "a.png", value: pngFile(t, 1)})...)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST whose commit was not heard of = %d %s", rec.Code, rec.Body)
	}
	var images []string
	if err := pool.QueryRow(context.Background(), `SELECT product_images FROM products`).Scan(&images); err != nil {
		t.Fatalf("the product did not commit: %v", err)
	}
	resp, err := http.Get(images[0])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s of the committed product's upload: %d", images[0], resp.StatusCode)
	}
}
