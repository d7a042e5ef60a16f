package api_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

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

// uploadBody streams a create request with one PNG file of size bytes
// through a pipe, so that no side holds the file whole. Writing starts when
// the reader is read; hold, when not nil, stops the file just before its
// end until it is closed.
func uploadBody(t testing.TB, size int, hold <-chan struct{}) (io.Reader, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			for _, f := range productFields {
				if err := mw.WriteField(f.name, f.value); err != nil {
					return err
				}
			}
			w, err := mw.CreateFormFile("product_images", "big.png")
			if err != nil {
				return err
			}
			chunk := bytes.Repeat([]byte{0x5a}, 64<<10)
			copy(chunk, "\x89PNG\r\n\x1a\n")
			for left := size; left > 0; left -= len(chunk) {
				if left <= len(chunk) && hold != nil {
					<-hold
				}
				if _, err := w.Write(chunk[:min(left, len(chunk))]); err != nil {
					return err
				}
				chunk[0] = 0x5a // the signature opens the file only
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	return pr, mw.FormDataContentType()
}

// Beyond MaxConcurrentUploads, a multipart request is refused at once with
// a 503 the client may retry; the slot frees when the upload ends, and no
// spooled file outlives its request.
func TestUploadsAreCapped(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	h := newUploadHarness(t, api.Config{MaxConcurrentUploads: 1, SpoolDir: spool})
	post := func(body io.Reader, ct string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/products", body)
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.srv.ServeHTTP(rec, req)
		return rec
	}
	hold := make(chan struct{})
	first := make(chan *httptest.ResponseRecorder, 1)
	firstBody, firstCT := uploadBody(t, 1<<20, hold)
	go func() { first <- post(firstBody, firstCT) }()
	// The first upload is spooling: it holds the only slot.
	deadline := time.Now().Add(10 * time.Second)
	for entries, _ := os.ReadDir(spool); len(entries) == 0; entries, _ = os.ReadDir(spool) {
		if time.Now().After(deadline) {
			t.Fatal("the first upload never started spooling")
		}
		time.Sleep(5 * time.Millisecond)
	}

	body, ct := uploadBody(t, 1<<10, nil)
	rec := post(body, ct)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "uploads already; retry shortly") {
		t.Fatalf("an upload beyond the cap = %d %s (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	close(hold)
	if rec := <-first; rec.Code != http.StatusCreated {
		t.Fatalf("the first upload = %d %s", rec.Code, rec.Body)
	}
	body, ct = uploadBody(t, 1<<10, nil)
	if rec := post(body, ct); rec.Code != http.StatusCreated {
		t.Fatalf("an upload once the slot is free = %d %s", rec.Code, rec.Body)
	}
	// A refused file is not left behind either.
	body, ct = uploadBody(t, api.MaxImageFileBytes+1, nil)
	if rec := post(body, ct); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a file over the limit = %d %s", rec.Code, rec.Body)
	}
	if entries, _ := os.ReadDir(spool); len(entries) != 0 {
		t.Fatalf("spooled files left: %v", entries)
	}
	if n := len(h.originals()); n != 2 {
		t.Fatalf("%d originals stored, want the two created products'", n)
	}
}
