package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/internal/redistest"
	"github.com/productd/productd/internal/s3test"
	"github.com/productd/productd/outbox"
	"github.com/productd/productd/storage"
)

// The end-to-end tests run the real roles, wired by run, against the real
// services, each deployment with a database, a RabbitMQ vhost, a Redis
// prefix and a bucket of its own, so that they can run beside every other
// package's tests. A deployment's configuration is a parameter of its runs
// (deployment.env), not the process's environment, so they also run in
// parallel with each other.

// awaitTimeout bounds every wait of these tests; on an idle machine each
// takes well under a second.
const awaitTimeout = 20 * time.Second

// TestAllRolesEndToEnd runs `productd all` and drives it through HTTP: a
// product with an image URL and one with an uploaded image both end done
// with compressed images in MinIO, a change is read back at once through
// the cache, a deletion removes the objects, and cancelling drains and
// exits cleanly.
func TestAllRolesEndToEnd(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	photo := readFixture(t, "photo.jpg")
	images := serveImage(t, photo)
	logs := d.start(t, "all")

	d.awaitReady(t, logs)

	byURL := d.create(t, jsonRequest(t, http.MethodPost, d.url("/products"), map[string]any{
		"user_id": 7, "product_name": "lamp", "product_price": 19.5,
		"product_images": []string{images + "/photo.jpg"},
	}))
	byUpload := d.create(t, multipartRequest(t, d.url("/products"), map[string]string{
		"user_id": "7", "product_name": "chair", "product_price": "42",
	}, photo))
	if len(byUpload.Images) != 1 || !strings.HasPrefix(byUpload.Images[0], d.s3.PublicURL+"/"+storage.PrefixOriginals) {
		t.Fatalf("uploaded original stored as %q, want a URL under %s/%s", byUpload.Images, d.s3.PublicURL, storage.PrefixOriginals)
	}
	for _, p := range []*productd.Product{byURL, byUpload} {
		done := d.awaitImages(t, logs, p.ID)
		d.checkCompressed(t, done)
	}

	// A read fills the cache; the change must be read back at once, not the
	// cached product.
	before := d.get(t, byURL.ID)
	if !d.cacheHasKeys(t) {
		t.Errorf("no Redis key under %s after a read: the API does not read through the cache", d.prefix)
	}
	resp := d.do(t, jsonRequest(t, http.MethodPatch, d.url(fmt.Sprint("/products/", byURL.ID)), map[string]any{"product_name": "desk lamp"}))
	expectStatus(t, resp, http.StatusOK)
	after := d.get(t, byURL.ID)
	if after.Name != "desk lamp" || after.Version <= before.Version {
		t.Errorf("read after PATCH: name %q version %d, want %q and a version above %d", after.Name, after.Version, "desk lamp", before.Version)
	}
	if after.ImageStatus != productd.ImageStatusDone || len(after.CompressedImages) != 1 {
		t.Errorf("a name change touched the images: status %q, compressed %q", after.ImageStatus, after.CompressedImages)
	}

	// Two compressed images and the uploaded original.
	if keys := d.objects(t); len(keys) != 3 {
		t.Errorf("the bucket holds %q, want two compressed images and one original", keys)
	}
	for _, p := range []*productd.Product{byURL, byUpload} {
		resp := d.do(t, mustRequest(t, http.MethodDelete, d.url(fmt.Sprint("/products/", p.ID)), nil))
		expectStatus(t, resp, http.StatusNoContent)
		resp = d.do(t, mustRequest(t, http.MethodGet, d.url(fmt.Sprint("/products/", p.ID)), nil))
		expectStatus(t, resp, http.StatusNotFound)
	}
	await(t, logs, "the deleted products' objects to be removed", func() (bool, string) {
		keys := d.objects(t)
		return len(keys) == 0, fmt.Sprintf("objects left: %q", keys)
	})

	d.stop(t, logs,
		`"msg":"http draining in-flight requests"`,
		`"msg":"relay: stopped"`,
		`"msg":"imageworker: stopped"`,
		`"msg":"productd stopped"`,
	)
	if !logs.contains(`"msg":"storage: bucket ready"`) {
		t.Errorf("the bucket was never reported ready:\n%s", logs)
	}
}

// TestRolesInSeparateProcesses runs api, relay and worker as three
// deployments of one role each, sharing the services as separate processes
// would: an event crosses from the API's outbox through the relay to the
// worker, and the worker's write reaches the API's reads through the
// cache's cross-process invalidation.
func TestRolesInSeparateProcesses(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	images := serveImage(t, readFixture(t, "photo-444.jpg"))
	roles, addrs := d.startApart(t)
	api := roles["api"]
	for role, addr := range addrs {
		awaitStatus(t, roles[role], "http://"+addr+"/readyz", http.StatusOK)
	}
	// Each role builds what it uses: only the API, which serves reads,
	// keeps products in memory (each cache registers its tier as it opens),
	// so that its writes wait for no other process's tier.
	if n := redistest.Client(t).ZCard(context.Background(), d.prefix+"tiers").Val(); n != 1 {
		t.Errorf("%d in-process tiers registered, want 1 (the API's)", n)
	}
	// The API process wakes the relays of other processes after its
	// commits, through the outbox channel.
	listener := listen(t, d.getenv("DATABASE_URL"), outbox.NotifyChannel)

	p := d.create(t, jsonRequest(t, http.MethodPost, d.url("/products"), map[string]any{
		"user_id": 8, "product_name": "vase", "product_price": 3.1,
		"product_images": []string{images + "/photo.jpg"},
	}))
	awaitNotification(t, listener)
	// Read it while it is pending, so that the API process caches that.
	if got := d.get(t, p.ID); got.ImageStatus == productd.ImageStatusDone {
		t.Logf("the worker finished before the first read; the cache was not put to the test")
	}
	d.checkCompressed(t, d.awaitImages(t, roles["worker"], p.ID))
	// The relay process runs every chore, the API's included: whichever
	// process leads River schedules them all.
	d.awaitChores(t, roles["relay"], "idempotency_key_retention", "outbox_retention", "outbox_sweep")

	// The relay and worker processes answer health, not the product API.
	for _, role := range []string{"relay", "worker"} {
		awaitStatus(t, roles[role], "http://"+addrs[role]+"/healthz", http.StatusOK)
		awaitStatus(t, roles[role], "http://"+addrs[role]+"/products", http.StatusNotFound)
	}

	d.stop(t, api, `"msg":"http draining in-flight requests"`, `"msg":"productd stopped"`)
	for role, want := range map[string]string{"relay": `"msg":"relay: stopped"`, "worker": `"msg":"imageworker: stopped"`} {
		if !roles[role].contains(want) {
			t.Errorf("%s did not log %s:\n%s", role, want, roles[role])
		}
	}
}

// deployment is one isolated productd: the configuration every run call of
// the test reads, and what the test needs to look behind it.
type deployment struct {
	// env is the configuration: the environment variables its runs read in
	// place of the process's (see lookup).
	mu  sync.Mutex
	env map[string]string

	addr   string
	prefix string
	s3     storage.Config
	store  *storage.Store
	client *http.Client

	// exporter, when set, records the spans of every run started after.
	exporter sdktrace.SpanExporter

	// runs are the run calls in progress; stop cancels them all.
	cancel context.CancelFunc
	ctx    context.Context
	runs   sync.WaitGroup
	codes  chan runResult
}

type runResult struct {
	role string
	code int
	logs *syncBuffer
}

func newDeployment(t testing.TB) *deployment {
	t.Helper()
	d := &deployment{
		addr:   freeAddr(t),
		prefix: redistest.Prefix(t),
		s3:     s3test.Config(t),
		client: &http.Client{Timeout: awaitTimeout},
		codes:  make(chan runResult, 8),
	}
	store, err := storage.New(d.s3)
	if err != nil {
		t.Fatal(err)
	}
	d.store = store
	d.env = map[string]string{
		"DATABASE_URL":      dbtest.New(t),
		"AMQP_URL":          amqptest.NewVhost(t),
		"REDIS_URL":         redistest.URL(),
		"CACHE_PREFIX":      d.prefix,
		"S3_ENDPOINT":       d.s3.Endpoint,
		"S3_ACCESS_KEY":     d.s3.AccessKey,
		"S3_SECRET_KEY":     d.s3.SecretKey,
		"S3_BUCKET":         d.s3.Bucket,
		"S3_PUBLIC_URL":     d.s3.PublicURL,
		"HTTP_ADDR":         d.addr,
		"IMAGE_FETCH_ALLOW": "127.0.0.1:*",
		"LOG_FORMAT":        "json",
		"LOG_LEVEL":         "info",
		"SHUTDOWN_TIMEOUT":  "10s",
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	// Registered after the resources above, so it runs before they go:
	// nothing of productd may still use them when they are removed.
	t.Cleanup(func() {
		d.cancel()
		d.runs.Wait()
	})
	return d
}

// setenv sets a variable of the deployment's configuration, for the runs
// that start after.
func (d *deployment) setenv(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.env[name] = value
}

// getenv returns a variable of the deployment's configuration.
func (d *deployment) getenv(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.env[name]
}

// lookup returns what a run reads its environment through: the variables
// of extra, then those of the deployment's configuration as they are now,
// then the process's environment.
func (d *deployment) lookup(extra map[string]string) func(string) (string, bool) {
	d.mu.Lock()
	env := maps.Clone(d.env)
	d.mu.Unlock()
	maps.Copy(env, extra)
	return func(name string) (string, bool) {
		if v, ok := env[name]; ok {
			return v, true
		}
		return os.LookupEnv(name)
	}
}

// run runs productd with args in the foreground, configured as the
// deployment, and returns its exit code.
func (d *deployment) run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return d.runWith(ctx, args, nil, stdout, stderr)
}

// runWith is run with the variables of extra set for this run alone.
func (d *deployment) runWith(ctx context.Context, args []string, extra map[string]string, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, d.lookup(extra), stdout, stderr)
}

// start runs productd with role in the background and returns its log.
func (d *deployment) start(t testing.TB, role string) *syncBuffer {
	t.Helper()
	return d.startWith(t, role, nil)
}

// startApart starts the api, relay and worker roles as three processes,
// each serving HTTP on an address of its own (the api role on d.addr), and
// returns their logs and addresses by role.
func (d *deployment) startApart(t testing.TB) (logs map[string]*syncBuffer, addrs map[string]string) {
	t.Helper()
	logs = map[string]*syncBuffer{}
	addrs = map[string]string{"api": d.addr, "relay": freeAddr(t), "worker": freeAddr(t)}
	for role, addr := range addrs {
		logs[role] = d.startWith(t, role, map[string]string{"HTTP_ADDR": addr})
	}
	return logs, addrs
}

// startWith is start with the variables in env set for this run alone, as
// for a process of its own (an HTTP_ADDR, say).
func (d *deployment) startWith(t testing.TB, role string, env map[string]string) *syncBuffer {
	t.Helper()
	logs := &syncBuffer{}
	lookup := d.lookup(env)
	ctx := d.ctx
	if d.exporter != nil {
		ctx = withSpanExporter(ctx, d.exporter)
	}
	d.runs.Add(1)
	go func() {
		defer d.runs.Done()
		code := runEnv(ctx, []string{role}, lookup, io.Discard, logs)
		d.codes <- runResult{role: role, code: code, logs: logs}
	}()
	return logs
}

// stop cancels every run, expects each to exit 0, and expects want in
// logs.
func (d *deployment) stop(t testing.TB, logs *syncBuffer, want ...string) {
	t.Helper()
	d.cancel()
	d.runs.Wait()
	close(d.codes)
	for r := range d.codes {
		if r.code != 0 {
			t.Errorf("productd %s exited %d after its context was cancelled:\n%s", r.role, r.code, r.logs)
		}
	}
	for _, w := range want {
		if !logs.contains(w) {
			t.Errorf("no log line %s on the way out:\n%s", w, logs)
		}
	}
}

// awaitChores waits until River has completed a run of each chore kind in
// the deployment's database.
func (d *deployment) awaitChores(t testing.TB, logs *syncBuffer, kinds ...string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), d.getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	want := strings.Join(kinds, ",")
	await(t, logs, "runs of "+want, func() (bool, string) {
		var done string
		err := conn.QueryRow(context.Background(), `SELECT coalesce(string_agg(DISTINCT kind, ',' ORDER BY kind), '')
			FROM river_job WHERE state = 'completed' AND kind = ANY($1)`, kinds).Scan(&done)
		if err != nil {
			return false, err.Error()
		}
		return done == want, "completed: " + done
	})
}

func (d *deployment) url(path string) string { return "http://" + d.addr + path }

// awaitReady waits for /readyz to answer 200.
func (d *deployment) awaitReady(t testing.TB, logs *syncBuffer) {
	t.Helper()
	awaitStatus(t, logs, d.url("/readyz"), http.StatusOK)
}

// awaitStatus waits for a GET of url to answer status, and returns the
// body of that answer.
func awaitStatus(t testing.TB, logs *syncBuffer, url string, status int) string {
	t.Helper()
	var body []byte
	client := &http.Client{Timeout: awaitTimeout}
	await(t, logs, fmt.Sprintf("GET %s to answer %d", url, status), func() (bool, string) {
		resp, err := client.Get(url)
		if err != nil {
			return false, err.Error()
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == status, fmt.Sprintf("%d %s", resp.StatusCode, body)
	})
	return string(body)
}

func (d *deployment) do(t testing.TB, req *http.Request) *http.Response {
	t.Helper()
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// create sends a create request and returns the product of its 201.
func (d *deployment) create(t testing.TB, req *http.Request) *productd.Product {
	t.Helper()
	resp := d.do(t, req)
	expectStatus(t, resp, http.StatusCreated)
	p := decodeProduct(t, resp)
	if want := fmt.Sprint("/products/", p.ID); resp.Header.Get("Location") != want {
		t.Errorf("Location %q, want %q", resp.Header.Get("Location"), want)
	}
	if p.ImageStatus != productd.ImageStatusPending {
		t.Errorf("a new product with an image is %q, want %q", p.ImageStatus, productd.ImageStatusPending)
	}
	return p
}

func (d *deployment) get(t testing.TB, id int64) *productd.Product {
	t.Helper()
	resp := d.do(t, mustRequest(t, http.MethodGet, d.url(fmt.Sprint("/products/", id)), nil))
	expectStatus(t, resp, http.StatusOK)
	return decodeProduct(t, resp)
}

// awaitImages waits for the product's images to be processed, read through
// the API, and fails at once if they fail.
func (d *deployment) awaitImages(t *testing.T, logs *syncBuffer, id int64) *productd.Product {
	t.Helper()
	var p *productd.Product
	await(t, logs, fmt.Sprintf("product %d to be done", id), func() (bool, string) {
		p = d.get(t, id)
		if p.ImageStatus == productd.ImageStatusFailed {
			t.Fatalf("product %d failed: %s\n%s", id, p.ImageError, logs)
		}
		return p.ImageStatus == productd.ImageStatusDone, fmt.Sprintf("status %q", p.ImageStatus)
	})
	return p
}

// checkCompressed fetches every compressed image from MinIO, as a client
// would, and expects a JPEG fitted into the worker's box.
func (d *deployment) checkCompressed(t *testing.T, p *productd.Product) {
	t.Helper()
	if len(p.CompressedImages) != len(p.Images) || len(p.Images) == 0 {
		t.Fatalf("product %d: %d compressed images for %d originals", p.ID, len(p.CompressedImages), len(p.Images))
	}
	for _, u := range p.CompressedImages {
		if !strings.HasPrefix(u, d.s3.PublicURL+"/"+storage.PrefixProducts) {
			t.Errorf("compressed URL %q is not under %s/%s", u, d.s3.PublicURL, storage.PrefixProducts)
			continue
		}
		resp := d.do(t, mustRequest(t, http.MethodGet, u, nil))
		expectStatus(t, resp, http.StatusOK)
		img, err := jpeg.Decode(resp.Body)
		if err != nil {
			t.Errorf("compressed image %s is not a JPEG: %v", u, err)
			continue
		}
		if b := img.Bounds(); b.Dx() > 1024 || b.Dy() > 1024 || b.Empty() {
			t.Errorf("compressed image %s is %v, want it within 1024 × 1024", u, b.Size())
		}
	}
}

// objects lists the keys in the deployment's bucket.
func (d *deployment) objects(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	var all []string
	for _, prefix := range []string{storage.PrefixOriginals, storage.PrefixProducts} {
		keys, err := d.store.List(ctx, prefix)
		if err != nil {
			t.Fatalf("list %s: %v", prefix, err)
		}
		all = append(all, keys...)
	}
	return all
}

// cacheHasKeys reports whether Redis holds a key under the deployment's
// prefix. It scans the whole keyspace: one SCAN call looks at a slice of it
// only, and finds nothing when the shared Redis holds other tests' keys.
func (d *deployment) cacheHasKeys(t *testing.T) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	iter := redistest.Client(t).Scan(ctx, 0, d.prefix+"*", 1000).Iterator()
	found := iter.Next(ctx)
	if err := iter.Err(); err != nil {
		t.Fatalf("scan redis: %v", err)
	}
	return found
}

// listen returns a connection to the database at url that LISTENs on
// channel, closed when t ends.
func listen(t testing.TB, url, channel string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	return conn
}

// awaitNotification waits for a notification on conn.
func awaitNotification(t testing.TB, conn *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	if _, err := conn.WaitForNotification(ctx); err != nil {
		t.Fatalf("no notification: %v", err)
	}
}

// serveImage serves data at every path of a test server and returns its
// URL.
func serveImage(t testing.TB, data []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// readFixture reads one of the image worker's fixtures.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "imageworker", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustRequest(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func jsonRequest(t testing.TB, method, url string, body any) *http.Request {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req := mustRequest(t, method, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// multipartRequest is a create request with fields and one image file.
func multipartRequest(t *testing.T, url string, fields map[string]string, image []byte) *http.Request {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="product_images"; filename="photo.jpg"`)
	h.Set("Content-Type", "image/jpeg")
	part, err := mw.CreatePart(h)
	if err == nil {
		_, err = part.Write(image)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	req := mustRequest(t, http.MethodPost, url, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return req
}

func expectStatus(t testing.TB, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s = %s, want %d: %s", resp.Request.Method, resp.Request.URL, resp.Status, want, body)
	}
}

func decodeProduct(t testing.TB, resp *http.Response) *productd.Product {
	t.Helper()
	var p productd.Product
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatalf("decode product from %s %s: %v", resp.Request.Method, resp.Request.URL, err)
	}
	return &p
}

// await polls cond until it holds, failing t with cond's last word and the
// logs after awaitTimeout.
func await(t testing.TB, logs *syncBuffer, what string, cond func() (bool, string)) {
	t.Helper()
	awaitFor(t, logs, awaitTimeout, what, cond)
}

// awaitFor is await with a bound of its own.
func awaitFor(t testing.TB, logs *syncBuffer, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s\nlogs:\n%s", timeout, what, last, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a log sink the test can read while productd writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) contains(s string) bool { return strings.Contains(b.String(), s) }
