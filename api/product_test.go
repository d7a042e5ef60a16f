package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/productd/productd"
)

// seedBody is the request body of the seed service's README, byte for byte.
const seedBody = `{"user_id":1,"product_name":"Laptop","product_description":"A fast laptop","product_images":["http://example.com/image1.jpg","http://example.com/image2.jpg"],"product_price":100.00}`

// ignoreIDAndTimes leaves out of a comparison of products what the
// database assigns.
var ignoreIDAndTimes = cmpopts.IgnoreFields(productd.Product{}, "ID", "CreatedAt", "UpdatedAt")

func TestCreateSeedBody(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rec := h.do(http.MethodPost, "/products", seedBody)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status = %d %s", rec.Code, rec.Body)
	}
	p := decode[productd.Product](t, rec)
	if got, want := rec.Header().Get("Location"), "/products/"+strconv.FormatInt(p.ID, 10); got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	want := productd.Product{
		UserID: 1, Name: "Laptop", Description: "A fast laptop", Price: 10000,
		Images:           []string{"http://example.com/image1.jpg", "http://example.com/image2.jpg"},
		CompressedImages: []string{},
		ImageStatus:      productd.ImageStatusPending,
		Version:          1,
	}
	if diff := cmp.Diff(want, p, ignoreIDAndTimes); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	// The seed's field names are in the JSON, not only in our struct tags.
	for _, field := range []string{`"user_id":1`, `"product_name":"Laptop"`, `"product_price":100.00`, `"compressed_product_images":[]`, `"image_status":"pending"`} {
		if !strings.Contains(rec.Body.String(), field) {
			t.Errorf("body %s lacks %s", rec.Body, field)
		}
	}

	// Exactly one outbox row, for this product, pending, with the event's images.
	var typ, status string
	var productID int64
	var images []string
	err := h.pool.QueryRow(context.Background(),
		`SELECT event_type, status, product_id, ARRAY(SELECT json_array_elements_text(payload->'images')) FROM outbox`).
		Scan(&typ, &status, &productID, &images)
	if err != nil {
		t.Fatal(err)
	}
	if typ != string(productd.EventProductCreated) || status != "pending" || productID != p.ID || len(images) != 2 {
		t.Errorf("outbox row = %s %s %d %v", typ, status, productID, images)
	}
	if n := h.count("outbox"); n != 1 {
		t.Errorf("outbox rows = %d, want 1", n)
	}
}

func TestCreateWithoutImagesHasStatusNone(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	p := h.create(`{"user_id":2,"product_name":"Pen","product_price":1.5}`)
	if p.ImageStatus != productd.ImageStatusNone || p.Price != 150 || len(p.Images) != 0 {
		t.Errorf("created %+v", p)
	}
}

// The seed's clients send JSON without a content type, or as curl -d does.
func TestCreateAcceptsSeedContentTypes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, ct := range []string{"", "application/x-www-form-urlencoded", "application/json; charset=utf-8", "text/plain"} {
		req := h.do(http.MethodPost, "/products", seedBody, "Content-Type", ct)
		if req.Code != http.StatusCreated {
			t.Errorf("Content-Type %q: status %d %s", ct, req.Code, req.Body)
		}
	}
}

func TestGetProduct(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	p := h.create(seedBody)

	rec := h.do(http.MethodGet, "/products/"+strconv.FormatInt(p.ID, 10), "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d %s", rec.Code, rec.Body)
	}
	if got := decode[productd.Product](t, rec); got.ID != p.ID || got.Name != p.Name || !got.CreatedAt.Equal(p.CreatedAt) {
		t.Errorf("got %+v, want %+v", got, p)
	}

	for path, want := range map[string]int{
		"/products/999999": http.StatusNotFound,
		"/products/abc":    http.StatusBadRequest,
		"/products/0":      http.StatusBadRequest,
		"/products/-1":     http.StatusBadRequest,
		"/products/1.5":    http.StatusBadRequest,
		"/nothing":         http.StatusNotFound,
	} {
		rec := h.do(http.MethodGet, path, "")
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
		if e := decode[errorResponse](t, rec); e.Error.Code == "" || e.Error.Message == "" {
			t.Errorf("GET %s: error body %s", path, rec.Body)
		}
	}
	if rec := h.do(http.MethodPut, "/products/1", "{}"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT = %d, want 405", rec.Code)
	}
}

func TestUpdateProduct(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	p := h.create(seedBody)
	path := "/products/" + strconv.FormatInt(p.ID, 10)

	// Fields other than images: no new event, images untouched.
	rec := h.do(http.MethodPatch, path, `{"product_name":"Laptop Pro","product_price":120.5}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("PATCH = %d %s", rec.Code, rec.Body)
	}
	got := decode[productd.Product](t, rec)
	want := p
	want.Name, want.Price, want.Version = "Laptop Pro", 12050, 2
	if diff := cmp.Diff(want, got, ignoreIDAndTimes); diff != "" {
		t.Errorf("after PATCH (-want +got):\n%s", diff)
	}
	if n := h.count("outbox"); n != 1 {
		t.Errorf("outbox rows after a PATCH without images = %d, want 1", n)
	}

	// New images: pending again and an images_changed event at the new version.
	rec = h.do(http.MethodPatch, path, `{"product_images":["https://example.com/new.png"]}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("PATCH images = %d %s", rec.Code, rec.Body)
	}
	got = decode[productd.Product](t, rec)
	if got.Version != 3 || len(got.Images) != 1 || got.ImageStatus != productd.ImageStatusPending {
		t.Errorf("after PATCH images: %+v", got)
	}
	var version int64
	err := h.pool.QueryRow(context.Background(),
		`SELECT (payload->>'product_version')::bigint FROM outbox WHERE event_type = $1`, productd.EventProductImagesChanged).Scan(&version)
	if err != nil || version != 3 {
		t.Errorf("images_changed event version = %d (%v), want 3", version, err)
	}

	// The same images again change nothing that needs processing.
	h.do(http.MethodPatch, path, `{"product_images":["https://example.com/new.png"]}`)
	if n := h.count("outbox"); n != 2 {
		t.Errorf("outbox rows after the same images = %d, want 2", n)
	}

	// No images at all: status none.
	got = decode[productd.Product](t, h.do(http.MethodPatch, path, `{"product_images":[]}`))
	if got.ImageStatus != productd.ImageStatusNone || len(got.Images) != 0 {
		t.Errorf("after clearing images: %+v", got)
	}

	// An empty patch returns the product unchanged.
	same := decode[productd.Product](t, h.do(http.MethodPatch, path, `{}`))
	if same.Version != got.Version {
		t.Errorf("empty PATCH changed version %d -> %d", got.Version, same.Version)
	}

	for body, want := range map[string]int{
		`{"user_id":5}`:             http.StatusBadRequest,
		`{"id":5}`:                  http.StatusBadRequest,
		`{"product_name":null}`:     http.StatusUnprocessableEntity,
		`{"product_name":""}`:       http.StatusUnprocessableEntity,
		`{"product_name":5}`:        http.StatusBadRequest,
		`{"product_price":"5"}`:     http.StatusBadRequest,
		`{"product_price":-5}`:      http.StatusUnprocessableEntity,
		`{"product_price":1.234}`:   http.StatusUnprocessableEntity,
		`{"product_images":"x"}`:    http.StatusBadRequest,
		`{"product_images":["x"]}`:  http.StatusUnprocessableEntity,
		`{"product_description":1}`: http.StatusBadRequest,
		`[1]`:                       http.StatusBadRequest,
		`{`:                         http.StatusBadRequest,
	} {
		if rec := h.do(http.MethodPatch, path, body); rec.Code != want {
			t.Errorf("PATCH %s = %d %s, want %d", body, rec.Code, rec.Body, want)
		}
	}
	if rec := h.do(http.MethodPatch, "/products/999999", `{"product_name":"x"}`); rec.Code != http.StatusNotFound {
		t.Errorf("PATCH missing = %d, want 404", rec.Code)
	}
}

func TestDeleteProduct(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	p := h.create(seedBody)
	path := "/products/" + strconv.FormatInt(p.ID, 10)

	if rec := h.do(http.MethodDelete, path, ""); rec.Code != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", rec.Code, rec.Body)
	}
	if rec := h.do(http.MethodGet, path, ""); rec.Code != http.StatusNotFound {
		t.Errorf("GET after DELETE = %d, want 404", rec.Code)
	}
	if rec := h.do(http.MethodDelete, path, ""); rec.Code != http.StatusNotFound {
		t.Errorf("second DELETE = %d, want 404", rec.Code)
	}
	var n int
	err := h.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM outbox WHERE event_type = $1 AND product_id = $2 AND json_array_length(payload->'images') = 2`,
		productd.EventProductDeleted, p.ID).Scan(&n)
	if err != nil || n != 1 {
		t.Errorf("deleted events with the images = %d (%v), want 1", n, err)
	}
}

func TestListFiltersAndPagination(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// 30 products over 3 users, prices 1.00..30.00, names with a pattern.
	var all []productd.Product
	for i := 1; i <= 30; i++ {
		name := fmt.Sprintf("Item %02d", i)
		switch i % 5 {
		case 0:
			name = fmt.Sprintf("Blue Widget %d", i)
		case 1:
			name = fmt.Sprintf("big WIDGET %d", i)
		}
		all = append(all, h.create(fmt.Sprintf(`{"user_id":%d,"product_name":%q,"product_price":%d.00}`, i%3+1, name, i)))
	}
	ids := func(ps []productd.Product) []int64 {
		var out []int64
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	want := func(keep func(i int, p productd.Product) bool) []int64 {
		var out []int64
		for i, p := range all {
			if keep(i+1, p) {
				out = append(out, p.ID)
			}
		}
		return out
	}

	cases := []struct {
		query string
		keep  func(i int, p productd.Product) bool
	}{
		{"", func(int, productd.Product) bool { return true }},
		{"user_id=2", func(i int, _ productd.Product) bool { return i%3+1 == 2 }},
		{"min_price=10", func(i int, _ productd.Product) bool { return i >= 10 }},
		{"max_price=10.50", func(i int, _ productd.Product) bool { return i <= 10 }},
		{"min_price=5&max_price=7", func(i int, _ productd.Product) bool { return i >= 5 && i <= 7 }},
		{"product_name=widget", func(i int, _ productd.Product) bool { return i%5 == 0 || i%5 == 1 }},
		{"product_name=BLUE", func(i int, _ productd.Product) bool { return i%5 == 0 }},
		{"product_name=%25", func(int, productd.Product) bool { return false }}, // a literal %, not a wildcard
		{"user_id=1&min_price=10&product_name=widget", func(i int, _ productd.Product) bool {
			return i%3+1 == 1 && i >= 10 && (i%5 == 0 || i%5 == 1)
		}},
	}
	for _, tc := range cases {
		for _, limit := range []int{7, 200} {
			// Follow the Link headers page by page: no gaps, no repeats.
			var got []productd.Product
			next := "/products?" + tc.query + "&limit=" + strconv.Itoa(limit)
			for pages := 0; next != ""; pages++ {
				if pages > 10 {
					t.Fatalf("%s: too many pages", tc.query)
				}
				rec := h.do(http.MethodGet, next, "")
				if rec.Code != http.StatusOK {
					t.Fatalf("GET %s = %d %s", next, rec.Code, rec.Body)
				}
				page := decode[[]productd.Product](t, rec)
				if len(page) > limit {
					t.Fatalf("GET %s: %d items over limit %d", next, len(page), limit)
				}
				got = append(got, page...)
				next = nextLink(t, rec.Header().Get("Link"))
			}
			if fmt.Sprint(ids(got)) != fmt.Sprint(want(tc.keep)) {
				t.Errorf("?%s limit %d: got %v, want %v", tc.query, limit, ids(got), want(tc.keep))
			}
		}
	}

	// An empty page is an empty JSON array, as the seed answered.
	if rec := h.do(http.MethodGet, "/products?user_id=99", ""); rec.Body.String() != "[]" {
		t.Errorf("empty list = %s, want []", rec.Body)
	}
}

var linkNext = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

func nextLink(t *testing.T, header string) string {
	t.Helper()
	if header == "" {
		return ""
	}
	m := linkNext.FindStringSubmatch(header)
	if m == nil {
		t.Fatalf("Link header %q is not a next link", header)
	}
	u, err := url.Parse(m[1])
	if err != nil || u.Query().Get("cursor") == "" {
		t.Fatalf("Link %q has no cursor", m[1])
	}
	return m[1]
}

func TestListRejectsBadQueries(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, q := range []string{
		"min_price=10&max_price=5", "min_price=abc", "max_price=-1", "min_price=1.234",
		"user_id=x", "user_id=0", "limit=0", "limit=201", "limit=x", "cursor=!!", "cursor=YWJj",
		"product_name=" + strings.Repeat("a", 201),
	} {
		rec := h.do(http.MethodGet, "/products?"+q, "")
		if rec.Code != http.StatusBadRequest {
			t.Errorf("GET ?%s = %d %s, want 400", q, rec.Code, rec.Body)
		}
		if e := decode[errorResponse](t, rec); e.Error.Code != productd.EINVALID {
			t.Errorf("GET ?%s: code %q", q, e.Error.Code)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	first := h.do(http.MethodPost, "/products", seedBody, "Idempotency-Key", "k-1")
	if first.Code != http.StatusCreated {
		t.Fatalf("first = %d %s", first.Code, first.Body)
	}
	// Same product, other formatting: still the same request.
	reformatted := strings.ReplaceAll(seedBody, ",", ", ")
	second := h.do(http.MethodPost, "/products", reformatted, "Idempotency-Key", "k-1")
	if second.Code != http.StatusCreated || second.Body.String() != first.Body.String() {
		t.Errorf("replay = %d %s, want 201 %s", second.Code, second.Body, first.Body)
	}
	if second.Header().Get("Location") != first.Header().Get("Location") || second.Header().Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay headers = %v", second.Header())
	}
	if n := h.count("products"); n != 1 {
		t.Errorf("products after replay = %d, want 1", n)
	}

	other := h.do(http.MethodPost, "/products", strings.Replace(seedBody, "Laptop", "Phone", 1), "Idempotency-Key", "k-1")
	if other.Code != http.StatusUnprocessableEntity {
		t.Errorf("same key, other body = %d %s, want 422", other.Code, other.Body)
	}
	if rec := h.do(http.MethodPost, "/products", seedBody, "Idempotency-Key", strings.Repeat("k", 256)); rec.Code != http.StatusBadRequest {
		t.Errorf("over-long key = %d, want 400", rec.Code)
	}
	if n, e := h.count("products"), h.count("outbox"); n != 1 || e != 1 {
		t.Errorf("after refusals: %d products, %d outbox rows; want 1 and 1", n, e)
	}
}

// Concurrent retries with one key create one product: the second waits on
// the first's transaction and then replays its response.
func TestIdempotencyKeyConcurrent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const n = 8
	bodies := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := h.do(http.MethodPost, "/products", seedBody, "Idempotency-Key", "same")
			if rec.Code != http.StatusCreated {
				t.Errorf("request %d = %d %s", i, rec.Code, rec.Body)
			}
			bodies[i] = rec.Body.String()
		}()
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if bodies[i] != bodies[0] {
			t.Errorf("response %d differs: %s vs %s", i, bodies[i], bodies[0])
		}
	}
	if got := h.count("products"); got != 1 {
		t.Errorf("products = %d, want 1", got)
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	images := func(n int) string {
		var urls []string
		for i := range n {
			urls = append(urls, fmt.Sprintf("%q", fmt.Sprintf("http://example.com/%d.jpg", i)))
		}
		return "[" + strings.Join(urls, ",") + "]"
	}
	cases := []struct {
		name, body, contentType string
		status                  int
		message                 string // a substring the message must contain
	}{
		{"malformed JSON", `{"user_id":1,`, "", 400, "malformed JSON"},
		{"not an object", `[1,2]`, "", 400, "JSON object"},
		{"trailing data", seedBody + `{}`, "", 400, "after the JSON value"},
		{"empty body", ``, "", 400, "empty"},
		{"unknown field", `{"user_id":1,"product_name":"a","product_price":1,"colour":"red"}`, "", 400, `"colour"`},
		{"user_id as string", `{"user_id":"1","product_name":"a","product_price":1}`, "", 400, "user_id must be an integer"},
		{"price as string", `{"user_id":1,"product_name":"a","product_price":"1"}`, "", 400, "product_price must be a number"},
		{"name as number", `{"user_id":1,"product_name":5,"product_price":1}`, "", 400, "product_name must be a string"},
		{"images as string", `{"user_id":1,"product_name":"a","product_price":1,"product_images":"http://x"}`, "", 400, "product_images must be an array"},
		{"missing name", `{"user_id":1,"product_price":1}`, "", 422, "product_name is required"},
		{"blank name", `{"user_id":1,"product_name":"  ","product_price":1}`, "", 422, "product_name is required"},
		{"long name", `{"user_id":1,"product_name":"` + strings.Repeat("n", 201) + `","product_price":1}`, "", 422, "longer than 200"},
		{"missing user", `{"product_name":"a","product_price":1}`, "", 422, "user_id is required"},
		{"zero user", `{"user_id":0,"product_name":"a","product_price":1}`, "", 422, "user_id"},
		{"missing price", `{"user_id":1,"product_name":"a"}`, "", 422, "product_price is required"},
		{"negative price", `{"user_id":1,"product_name":"a","product_price":-1}`, "", 422, "negative"},
		{"three decimals", `{"user_id":1,"product_name":"a","product_price":1.005}`, "", 422, "two decimals"},
		{"exponent price", `{"user_id":1,"product_name":"a","product_price":1e3}`, "", 422, "plain decimal"},
		{"huge price", `{"user_id":1,"product_name":"a","product_price":100000000000}`, "", 422, "maximum"},
		{"11 images", `{"user_id":1,"product_name":"a","product_price":1,"product_images":` + images(11) + `}`, "", 422, "at most 10"},
		{"ftp URL", `{"user_id":1,"product_name":"a","product_price":1,"product_images":["ftp://example.com/a.jpg"]}`, "", 422, "product_images[0]"},
		{"relative URL", `{"user_id":1,"product_name":"a","product_price":1,"product_images":["http://example.com/a.jpg","/a.jpg"]}`, "", 422, "product_images[1]"},
		{"URL with credentials", `{"user_id":1,"product_name":"a","product_price":1,"product_images":["http://u:p@example.com/a.jpg"]}`, "", 422, "credentials"},
		{"2 MB body", `{"user_id":1,"product_name":"a","product_price":1,"product_description":"` + strings.Repeat("d", 2<<20) + `"}`, "", 413, "limit"},
		{"XML", `<product/>`, "application/xml", 415, "application/xml"},
		{"bad content type", seedBody, "a/b/c", 415, "cannot be parsed"},
		{"multipart without store", "--x--", "multipart/form-data; boundary=x", 415, "not enabled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := h.do(http.MethodPost, "/products", tc.body, "Content-Type", tc.contentType)
			if rec.Code != tc.status {
				t.Fatalf("status = %d %s, want %d", rec.Code, rec.Body, tc.status)
			}
			e := decode[errorResponse](t, rec)
			if !strings.Contains(e.Error.Message, tc.message) {
				t.Errorf("message %q lacks %q", e.Error.Message, tc.message)
			}
		})
	}
	if p, o := h.count("products"), h.count("outbox"); p != 0 || o != 0 {
		t.Errorf("refused requests wrote %d products and %d outbox rows", p, o)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if rec := h.do(http.MethodGet, "/healthz", ""); rec.Code != http.StatusOK {
		t.Errorf("healthz = %d", rec.Code)
	}
	rec := h.do(http.MethodGet, "/readyz", "")
	if rec.Code != http.StatusOK || rec.Body.String() != `{"status":"ready"}` {
		t.Errorf("readyz = %d %s", rec.Code, rec.Body)
	}
	h.pool.Close()
	rec = h.do(http.MethodGet, "/readyz", "")
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != `{"status":"unavailable","unavailable":["postgres"]}` {
		t.Errorf("readyz with the pool closed = %d %s", rec.Code, rec.Body)
	}
}
