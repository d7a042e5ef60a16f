package api_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
)

// A refused body names what is wrong with it, in words a client can act
// on, and writes nothing.
func TestRefusedJSONNamesTheProblem(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, tc := range []struct {
		body, message string
	}{
		{`{"user_id":1,}`, "malformed JSON at byte 14"},
		{`{"user_id":1,"product_name":"a","product_price":true}`, "product_price must be a number, not a boolean"},
		{`{"user_id":1,"product_name":"a","product_price":{"cents":100}}`, "product_price must be a number, not an object"},
		{`{"user_id":1,"product_name":"a","product_price":[1]}`, "product_price must be a number, not an array"},
		{`{"user_id":1,"product_name":{"en":"a"},"product_price":1}`, "product_name must be a string, not object"},
		{`{"user_id":1,"product_name":"a","product_price":1,"product_images":[1]}`, "must be a string, not number"},
		{`"a product"`, "request body must be a JSON object"},
	} {
		rec := h.do(http.MethodPost, "/products", tc.body)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d %s, want 400", tc.body, rec.Code, rec.Body)
			continue
		}
		if e := decode[errorResponse](t, rec); e.Error.Code != productd.EINVALID || !strings.Contains(e.Error.Message, tc.message) {
			t.Errorf("%s: error %+v, want %s saying %q", tc.body, e.Error, productd.EINVALID, tc.message)
		}
	}
	if n := h.count("products"); n != 0 {
		t.Errorf("refused bodies created %d products", n)
	}
}

// A body sent without a length (chunked) is held to the same limit as one
// that declares it, and a body that breaks off is the client's error.
func TestBodiesWithoutLengthOrEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	send := func(body io.Reader) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/products", body)
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = -1
		rec := httptest.NewRecorder()
		h.srv.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	huge := `{"user_id":1,"product_name":"a","product_price":1,"product_description":"` + strings.Repeat("d", api.DefaultMaxBodyBytes) + `"}`
	if code, body := send(strings.NewReader(huge)); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "over the limit") {
		t.Errorf("chunked body over the limit: %d %s", code, body)
	}
	broken := io.MultiReader(strings.NewReader(`{"user_id":1,"product_na`), &failingReader{errors.New("connection reset by peer")})
	if code, body := send(broken); code != http.StatusBadRequest || !strings.Contains(body, "read request body") {
		t.Errorf("body broken off: %d %s", code, body)
	}
	if n := h.count("products"); n != 0 {
		t.Errorf("refused bodies created %d products", n)
	}
}

type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }

// Multipart bodies that are broken, or whose parts are over their limits,
// are refused with the reason and leave no upload behind.
func TestMultipartBrokenOrOversizedParts(t *testing.T) {
	t.Parallel()
	h := newUploadHarness(t, api.Config{})
	const boundary = "b0undary"
	raw := func(parts string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/products", strings.NewReader(parts))
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		rec := httptest.NewRecorder()
		h.srv.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	field := func(name, headers string) string {
		return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"" + headers + "\r\n\r\n"
	}
	for _, tc := range []struct {
		name, body string
		status     int
		message    string
	}{
		{"part without headers' end", field("user_id", "") + "7\r\n--" + boundary + "\r\nno colon here\r\n\r\nx", 400, "malformed multipart body"},
		{"URL broken off", field("user_id", "") + "7\r\n" + field("product_image_urls", "") + "https://exam", 400, "malformed multipart body"},
		{"file broken off", field("product_images", `; filename="a.png"`) + pngFile(t, 9)[:20], 400, "malformed multipart body"},
	} {
		if code, body := raw(tc.body); code != tc.status || !strings.Contains(body, tc.message) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.name, code, body, tc.status, tc.message)
		}
	}

	longField := append(slices.Clone(productFields), part{name: "product_image_urls", value: "https://example.com/" + strings.Repeat("a", 64<<10)})
	if rec := h.send(http.MethodPost, "/products", nil, longField...); rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "field product_image_urls is over 65536 bytes") {
		t.Errorf("a 64 KiB field: %d %s", rec.Code, rec.Body)
	}
	bigFile := append(slices.Clone(productFields),
		part{name: "product_images", filename: "small.png", value: pngFile(t, 3)},
		part{name: "product_images", filename: "big.png", value: pngFile(t, 4) + strings.Repeat("\x00", api.MaxImageFileBytes)})
	if rec := h.send(http.MethodPost, "/products", nil, bigFile...); rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "image file 2 (big.png) is over the limit of 25 MiB") {
		t.Errorf("a file over 25 MiB: %d %.200s", rec.Code, rec.Body)
	}
	if n := h.count("products"); n != 0 {
		t.Errorf("refused bodies created %d products", n)
	}
	if left := h.originals(); len(left) != 0 {
		t.Errorf("refused bodies left originals %v", left)
	}
}

// A multipart PATCH whose upload cannot be stored changes nothing.
func TestMultipartUpdateWithStorageDown(t *testing.T) {
	t.Parallel()
	store := &failingStore{stored: []string{"originals/0.png"}} // the next put fails
	h := newUploadHarness(t, api.Config{Originals: store})
	p := h.create(`{"user_id":1,"product_name":"Cup","product_price":3}`)
	path := "/products/" + strconv.FormatInt(p.ID, 10)
	rec := h.send(http.MethodPatch, path, nil, part{name: "product_name", value: "Mug"},
		part{name: "product_images", filename: "m.png", value: pngFile(t, 7)})
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("PATCH with storage down = %d %s, want 503", rec.Code, rec.Body)
	}
	if got := decode[productd.Product](t, h.do(http.MethodGet, path, "")); got.Name != "Cup" || got.Version != p.Version {
		t.Errorf("after a refused PATCH: %+v, want it unchanged from %+v", got, p)
	}
}

// PATCH and DELETE check the id and the body's type before anything else,
// and a list read while the database is away is a 503 the client may retry.
func TestChangesAndListsRefusedEarly(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	p := h.create(seedBody)
	path := "/products/" + strconv.FormatInt(p.ID, 10)
	for _, tc := range []struct {
		method, path, body, contentType string
		status                          int
		message                         string
	}{
		{http.MethodPatch, "/products/x1", `{"product_name":"b"}`, "", 400, `product id "x1" is not a positive integer`},
		{http.MethodDelete, "/products/-3", "", "", 400, `product id "-3" is not a positive integer`},
		{http.MethodPatch, path, `<product/>`, "application/xml", 415, "application/xml"},
		{http.MethodPatch, path, " \n", "", 400, "request body is empty"},
	} {
		rec := h.do(tc.method, tc.path, tc.body, "Content-Type", tc.contentType)
		if e := decode[errorResponse](t, rec); rec.Code != tc.status || !strings.Contains(e.Error.Message, tc.message) {
			t.Errorf("%s %s %q: %d %+v, want %d saying %q", tc.method, tc.path, tc.body, rec.Code, e.Error, tc.status, tc.message)
		}
	}
	if got := decode[productd.Product](t, h.do(http.MethodGet, path, "")); got.Version != p.Version {
		t.Errorf("refused changes changed the product: version %d, was %d", got.Version, p.Version)
	}

	h.pool.Close()
	rec := h.do(http.MethodGet, "/products?user_id=1", "")
	e := decode[errorResponse](t, rec)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || e.Error.Code != productd.EUNAVAILABLE {
		t.Errorf("list with the database away: %d, Retry-After %q, %+v", rec.Code, rec.Header().Get("Retry-After"), e.Error)
	}
	if strings.Contains(e.Error.Message, "closed pool") {
		t.Errorf("the database's error reached the client: %q", e.Error.Message)
	}
}
