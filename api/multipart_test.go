package api_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/internal/s3test"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/storage"
	"github.com/productd/productd/uploads"
)

// uploadHarness is a server that stores uploads in a bucket of the test's
// own.
type uploadHarness struct {
	*harness
	store *storage.Store
}

func newUploadHarness(t *testing.T, cfg api.Config) *uploadHarness {
	t.Helper()
	pool := dbtest.NewPool(t)
	store := s3test.New(t)
	cfg.Products, cfg.Log = db.NewProductService(pool), logging.Discard()
	if cfg.Originals == nil {
		cfg.Originals = uploads.New(uploads.Config{}, pool, store, logging.Discard())
	}
	return &uploadHarness{harness: &harness{t: t, pool: pool, srv: api.NewServer(cfg)}, store: store}
}

// part is one part of a multipart body: a text field, or a file when
// filename is set.
type part struct{ name, filename, value string }

func multipartBody(t *testing.T, parts ...part) (string, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, p := range parts {
		var err error
		var pw io.Writer
		if p.filename != "" {
			pw, err = w.CreateFormFile(p.name, p.filename)
		} else {
			pw, err = w.CreateFormField(p.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		pw.Write([]byte(p.value))
	}
	w.Close()
	return b.String(), w.FormDataContentType()
}

// send sends a multipart request.
func (h *uploadHarness) send(method, path string, headers []string, parts ...part) *httptest.ResponseRecorder {
	h.t.Helper()
	body, ct := multipartBody(h.t, parts...)
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", ct)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	return rec
}

// originals lists the stored originals.
func (h *uploadHarness) originals() []string {
	h.t.Helper()
	keys, err := h.store.List(context.Background(), storage.PrefixOriginals)
	if err != nil {
		h.t.Fatal(err)
	}
	return keys
}

func pngFile(t *testing.T, shade uint8) string {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = shade
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

var productFields = []part{
	{name: "user_id", value: "7"},
	{name: "product_name", value: "Lamp"},
	{name: "product_description", value: "A lamp"},
	{name: "product_price", value: "12.50"},
}

func TestMultipartCreate(t *testing.T) {
	t.Parallel()
	h := newUploadHarness(t, api.Config{})
	photo := pngFile(t, 10)
	parts := append(slices.Clone(productFields),
		part{name: "product_images", filename: "a.png", value: photo},
		part{name: "product_image_urls", value: "https://example.com/b.jpg"},
		part{name: "product_images", filename: "c.png", value: pngFile(t, 200)},
	)
	rec := h.send(http.MethodPost, "/products", nil, parts...)
	if rec.Code != http.StatusCreated {
		t.Fatalf("POST = %d %s", rec.Code, rec.Body)
	}
	p := decode[productd.Product](t, rec)
	if p.UserID != 7 || p.Name != "Lamp" || p.Price != 1250 || p.ImageStatus != productd.ImageStatusPending || len(p.Images) != 3 {
		t.Fatalf("created %+v", p)
	}
	if p.Images[0] != "https://example.com/b.jpg" {
		t.Fatalf("images %v: URLs come first", p.Images)
	}
	// The uploads are stored and publicly readable as sent.
	for i, want := range []string{photo, pngFile(t, 200)} {
		resp, err := http.Get(p.Images[1+i])
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(got) != want || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("GET %s: %d %s, %d bytes", p.Images[1+i], resp.StatusCode, resp.Header.Get("Content-Type"), len(got))
		}
	}
}

func TestMultipartRefusals(t *testing.T) {
	t.Parallel()
	h := newUploadHarness(t, api.Config{MaxUploadBytes: 4096})
	photo := pngFile(t, 10)
	eleven := slices.Clone(productFields)
	for range 11 {
		eleven = append(eleven, part{name: "product_images", filename: "x.png", value: photo})
	}
	for _, tc := range []struct {
		name   string
		parts  []part
		status int
		msg    string
	}{
		{"not an image", append(slices.Clone(productFields), part{name: "product_images", filename: "x.jpg", value: "just text"}), 415, "image file 1 (x.jpg) is text/plain"},
		{"too large", append(slices.Clone(productFields), part{name: "product_images", filename: "x.png", value: photo + strings.Repeat("x", 5000)}), 413, "over the limit of 4096 bytes"},
		{"unknown field", append(slices.Clone(productFields), part{name: "color", value: "red"}), 400, "unknown field"},
		{"no user", productFields[1:], 422, "user_id is required"},
		{"bad user", append([]part{{name: "user_id", value: "seven"}}, productFields[1:]...), 400, "user_id must be an integer"},
		{"no name", []part{productFields[0], productFields[3]}, 422, "product_name is required"},
		{"no price", productFields[:3], 422, "product_price is required"},
		{"bad price", append(slices.Clone(productFields[:3]), part{name: "product_price", value: "-1"}), 422, "product_price"},
		{"twice", append(slices.Clone(productFields), part{name: "product_name", value: "Again"}), 400, "more than once"},
		{"bad URL", append(slices.Clone(productFields), part{name: "product_image_urls", value: "ftp://x"}), 422, "product_images[0]"},
	} {
		rec := h.send(http.MethodPost, "/products", nil, tc.parts...)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.msg) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.name, rec.Code, rec.Body, tc.status, tc.msg)
		}
	}
	if n := h.count("products"); n != 0 {
		t.Errorf("%d products created by refused requests", n)
	}
	if left := h.originals(); len(left) != 0 {
		t.Errorf("refused requests left originals %v", left)
	}

	// Eleven images within the size limit are refused by count.
	big := newUploadHarness(t, api.Config{})
	rec := big.send(http.MethodPost, "/products", nil, eleven...)
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "more than 10") {
		t.Errorf("eleven images: %d %s", rec.Code, rec.Body)
	}
}

// An upload whose transaction does not commit leaves no original behind:
// a key reused with another body, and a replay of the first request.
func TestMultipartOrphansRemoved(t *testing.T) {
	t.Parallel()
	h := newUploadHarness(t, api.Config{})
	first := append(slices.Clone(productFields), part{name: "product_images", filename: "a.png", value: pngFile(t, 1)})
	key := []string{api.IdempotencyKeyHeader, "k-1"}
	if rec := h.send(http.MethodPost, "/products", key, first...); rec.Code != http.StatusCreated {
		t.Fatalf("first = %d %s", rec.Code, rec.Body)
	}
	before := h.originals()
	if rec := h.send(http.MethodPost, "/products", key, first...); rec.Code != http.StatusCreated || rec.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay = %d %s", rec.Code, rec.Body)
	}
	other := append(slices.Clone(productFields), part{name: "product_images", filename: "a.png", value: pngFile(t, 2)})
	if rec := h.send(http.MethodPost, "/products", key, other...); rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other file = %d %s", rec.Code, rec.Body)
	}
	if after := h.originals(); len(before) != 1 || !slices.Equal(after, before) {
		t.Fatalf("originals %v, want only the first request's %v", after, before)
	}
}

func TestMultipartUpdate(t *testing.T) {
	t.Parallel()
	h := newUploadHarness(t, api.Config{})
	p := h.create(`{"user_id":1,"product_name":"Cup","product_price":3,"product_images":["https://example.com/a.jpg"]}`)
	path := "/products/" + strconv.FormatInt(p.ID, 10)

	rec := h.send(http.MethodPatch, path, nil, part{name: "product_name", value: "Big cup"},
		part{name: "product_images", filename: "n.png", value: pngFile(t, 50)})
	if rec.Code != http.StatusOK {
		t.Fatalf("PATCH = %d %s", rec.Code, rec.Body)
	}
	got := decode[productd.Product](t, rec)
	stored := h.originals()
	if got.Name != "Big cup" || len(got.Images) != 1 || len(stored) != 1 || !strings.HasSuffix(got.Images[0], stored[0]) || got.ImageStatus != productd.ImageStatusPending {
		t.Fatalf("after PATCH %+v, stored %v", got, stored)
	}

	// Fields alone keep the images; an empty URL list clears them.
	rec = h.send(http.MethodPatch, path, nil, part{name: "product_price", value: "4"})
	if got := decode[productd.Product](t, rec); rec.Code != http.StatusOK || got.Price != 400 || len(got.Images) != 1 {
		t.Fatalf("price PATCH = %d %+v", rec.Code, got)
	}
	rec = h.send(http.MethodPatch, path, nil, part{name: "product_image_urls", value: ""})
	if got := decode[productd.Product](t, rec); rec.Code != http.StatusOK || len(got.Images) != 0 || got.ImageStatus != productd.ImageStatusNone {
		t.Fatalf("clearing PATCH = %d %+v", rec.Code, got)
	}

	// A PATCH of a missing product removes its upload again.
	rec = h.send(http.MethodPatch, "/products/999999", nil, part{name: "product_images", filename: "m.png", value: pngFile(t, 60)})
	if rec.Code != http.StatusNotFound || len(h.originals()) != 1 {
		t.Fatalf("PATCH of a missing product = %d, originals %v", rec.Code, h.originals())
	}
	for _, tc := range []struct {
		parts  []part
		status int
	}{
		{[]part{{name: "user_id", value: "2"}}, 400},
		{[]part{{name: "product_price", value: "x"}}, 422},
		{[]part{{name: "product_name", value: ""}}, 422},
	} {
		if rec := h.send(http.MethodPatch, path, nil, tc.parts...); rec.Code != tc.status {
			t.Errorf("PATCH %v = %d %s, want %d", tc.parts, rec.Code, rec.Body, tc.status)
		}
	}
}

// failingStore is an original store whose storage is down.
type failingStore struct{ stored []string }

func (f *failingStore) PutOriginal(ctx context.Context, ct string, r io.Reader, size int64) (productd.Upload, error) {
	if len(f.stored) == 1 {
		return productd.Upload{}, productd.Errorf(productd.EUNAVAILABLE, "the image storage is unavailable")
	}
	f.stored = append(f.stored, "originals/1.png")
	return productd.Upload{Key: f.stored[0], URL: "https://s/" + f.stored[0]}, nil
}

func (f *failingStore) ReleaseOriginals(ctx context.Context, uploads []productd.Upload) error {
	f.stored = slices.DeleteFunc(f.stored, func(k string) bool {
		return slices.ContainsFunc(uploads, func(u productd.Upload) bool { return u.Key == k })
	})
	return nil
}

// Storage failing half-way through the files: 503, and the files already
// stored are removed.
func TestMultipartStorageDown(t *testing.T) {
	t.Parallel()
	store := &failingStore{}
	h := newUploadHarness(t, api.Config{Originals: store})
	parts := append(slices.Clone(productFields),
		part{name: "product_images", filename: "a.png", value: pngFile(t, 1)},
		part{name: "product_images", filename: "b.png", value: pngFile(t, 2)})
	rec := h.send(http.MethodPost, "/products", nil, parts...)
	if rec.Code != http.StatusServiceUnavailable || len(store.stored) != 0 {
		t.Fatalf("POST = %d %s, left %v", rec.Code, rec.Body, store.stored)
	}
}

func TestMultipartBadBody(t *testing.T) {
	t.Parallel()
	h := newUploadHarness(t, api.Config{})
	for _, ct := range []string{"multipart/form-data", "multipart/form-data; boundary=x"} {
		req := httptest.NewRequest(http.MethodPost, "/products", strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"user_id\"\r\n\r\n7"))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", ct, rec.Code, rec.Body)
		}
	}
}
