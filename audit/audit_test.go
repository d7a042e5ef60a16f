package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/productd/productd"
	"github.com/productd/productd/audit"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/internal/redistest"
	"github.com/productd/productd/internal/s3test"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/storage"
)

// deployment is a small productd deployment of one test: its database,
// bucket, cache prefix and broker topology, all on the real services.
type deployment struct {
	t        testing.TB
	pool     *pgxpool.Pool
	products *db.ProductService
	store    *storage.Store
	redis    *redis.Client
	prefix   string
	cache    *cache.ProductService
	topo     broker.Topology
}

func newDeployment(t testing.TB) *deployment {
	t.Helper()
	d := &deployment{t: t, pool: dbtest.NewPool(t), store: s3test.New(t), prefix: redistest.Prefix(t), redis: redistest.Client(t)}
	d.products = db.NewProductService(d.pool)
	client, err := cache.NewClient(redistest.URL(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	d.cache, err = cache.Open(context.Background(), d.products, cache.Config{Client: client, Prefix: d.prefix, Log: logging.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.cache.Close() })
	d.topo = amqptest.NewBroker(t, broker.Config{}, logging.Discard()).Topology()
	return d
}

func (d *deployment) config() audit.Config {
	return audit.Config{
		DB: d.pool, Store: d.store, Redis: d.redis, CachePrefix: d.prefix,
		AMQPURL: amqptest.URL(d.t), ParkingQueue: d.topo.ParkingQueue,
		RecheckAfter: 10 * time.Millisecond,
	}
}

func (d *deployment) run(cfg audit.Config) *audit.Report {
	d.t.Helper()
	r, err := audit.Run(context.Background(), cfg)
	if err != nil {
		d.t.Fatal(err)
	}
	return r
}

// create makes a product with the given original URLs.
func (d *deployment) create(images ...string) *productd.Product {
	d.t.Helper()
	return d.createOwning(nil, images...)
}

// createOwning makes a product that owns uploads, listed among its images.
func (d *deployment) createOwning(uploads []productd.Upload, images ...string) *productd.Product {
	d.t.Helper()
	p := &productd.Product{UserID: 1, Name: "lamp", Price: 100, Images: images, Uploads: uploads}
	for _, u := range uploads {
		p.Images = append(p.Images, u.URL)
	}
	if _, err := d.products.CreateProduct(context.Background(), p, nil); err != nil {
		d.t.Fatal(err)
	}
	return p
}

// upload stores an original as the API does: recorded as staged, then
// stored.
func (d *deployment) upload(key string) productd.Upload {
	d.t.Helper()
	u := productd.Upload{Key: key, URL: d.store.URL(key)}
	if err := db.StageUpload(context.Background(), d.pool, u); err != nil {
		d.t.Fatal(err)
	}
	d.put(key)
	return u
}

// put stores an object and returns its URL.
func (d *deployment) put(key string) string {
	d.t.Helper()
	u, err := d.store.Put(context.Background(), key, []byte("jpeg"), "image/jpeg")
	if err != nil {
		d.t.Fatal(err)
	}
	return u
}

// done makes a product whose compressed images are stored, as the worker
// leaves it.
func (d *deployment) done(images ...string) *productd.Product {
	d.t.Helper()
	return d.doneOwning(nil, images...)
}

// doneOwning makes a done product that owns uploads.
func (d *deployment) doneOwning(uploads []productd.Upload, images ...string) *productd.Product {
	d.t.Helper()
	p := d.createOwning(uploads, images...)
	var urls []string
	for i := range p.Images {
		urls = append(urls, d.put(storage.CompressedKey(p.ID, p.ImagesVersion, i, []byte(fmt.Sprint(i)), "jpg")))
	}
	d.setResult(p, productd.ImageStatusDone, urls...)
	return p
}

func (d *deployment) setResult(p *productd.Product, status productd.ImageStatus, urls ...string) {
	d.t.Helper()
	_, err := d.products.SetImageResult(context.Background(), productd.ImageResult{
		ProductID: p.ID, ImagesVersion: p.ImagesVersion, Status: status, CompressedImages: urls,
	})
	if err != nil {
		d.t.Fatal(err)
	}
}

func (d *deployment) exec(sql string, args ...any) {
	d.t.Helper()
	if _, err := d.pool.Exec(context.Background(), sql, args...); err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
}

// expect fails the test unless the report found exactly want violations of
// each check (absent: none), and lists a finding about each subject named.
func expect(t *testing.T, r *audit.Report, want map[string]int64, subjects map[string][]string) {
	t.Helper()
	if errs := r.Errors(); len(errs) > 0 {
		t.Fatalf("checks did not finish: %v", errs)
	}
	for _, res := range r.Results {
		if res.Violations != want[res.Check] {
			t.Errorf("%s: %d violations, want %d: %+v", res.Check, res.Violations, want[res.Check], res.Findings)
		}
		for _, s := range subjects[res.Check] {
			found := false
			for _, f := range res.Findings {
				found = found || f.Subject == s
			}
			if !found {
				t.Errorf("%s: no finding about %q in %+v", res.Check, s, res.Findings)
			}
		}
	}
}

func TestAHealthyDeploymentPassesEveryCheck(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	ctx := context.Background()
	uploaded := d.upload("originals/0190b3c2-0000-7000-8000-000000000001.jpg")
	var ids []int64
	for range 12 { // ids past 10 sort before 2 as text
		ids = append(ids, d.done("http://example.com/a.jpg", "http://example.com/b.jpg").ID)
	}
	d.doneOwning([]productd.Upload{uploaded})
	pending := d.create("http://example.com/c.jpg")
	// An object of images being processed, not written back yet, is no orphan.
	d.put(storage.CompressedKey(pending.ID, pending.ImagesVersion, 0, []byte("x"), "jpg"))
	d.create() // no images
	for _, id := range ids[:5] {
		if _, err := d.cache.FindProductByID(ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	r := d.run(d.config())
	expect(t, r, nil, nil)
	if !r.OK() {
		t.Error("a healthy deployment is not OK")
	}
	for check, checked := range map[string]int64{
		audit.CheckStuckProducts: 1, audit.CheckOrphanObjects: 27, audit.CheckParked: 1, audit.CheckStaleCache: 5,
	} {
		if got := r.Result(check).Checked; got != checked {
			t.Errorf("%s checked %d, want %d", check, got, checked)
		}
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil || !strings.Contains(text.String(), "every invariant holds") {
		t.Errorf("text report: %v\n%s", err, text.String())
	}
}

func TestEveryBrokenInvariantIsFound(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	ctx := context.Background()

	stuck := d.create("http://example.com/a.jpg")
	d.exec(`UPDATE products SET updated_at = now() - interval '2 hours' WHERE id = $1`, stuck.ID)
	d.create("http://example.com/a.jpg") // pending, but only just

	var oldRow, deadRow int64
	for _, id := range []*int64{&oldRow, &deadRow} {
		if err := d.pool.QueryRow(ctx, `SELECT id FROM outbox WHERE product_id = $1`, d.create().ID).Scan(id); err != nil {
			t.Fatal(err)
		}
	}
	d.exec(`UPDATE outbox SET created_at = now() - interval '1 hour' WHERE id = $1`, oldRow)
	d.exec(`UPDATE outbox SET status = 'dead', attempts = 10, last_error = 'nacked' WHERE id = $1`, deadRow)

	lost := d.done("http://example.com/a.jpg", "http://example.com/b.jpg")
	lostKey := storage.CompressedKey(lost.ID, lost.ImagesVersion, 1, []byte("1"), "jpg")
	if err := d.store.Delete(ctx, lostKey); err != nil {
		t.Fatal(err)
	}
	foreign := d.create("http://example.com/a.jpg")
	d.setResult(foreign, productd.ImageStatusDone, "http://elsewhere.example.com/x.jpg")
	gone := d.upload("originals/0190b3c2-0000-7000-8000-00000000000f.jpg")
	withGoneOriginal := d.createOwning([]productd.Upload{gone})
	if err := d.store.Delete(ctx, gone.Key); err != nil {
		t.Fatal(err)
	}

	failed := d.done("http://example.com/a.jpg")
	d.put(storage.CompressedKey(failed.ID, failed.ImagesVersion, 5, []byte("left over"), "jpg"))
	d.put(storage.CompressedKey(999999, 1, 0, []byte("no such product"), "jpg"))
	d.put("products/not-an-id.jpg")
	d.put("originals/0190b3c2-0000-7000-8000-000000000002.jpg")    // no upload record
	d.upload("originals/0190b3c2-0000-7000-8000-000000000003.jpg") // staged, never claimed

	cached := d.done("http://example.com/a.jpg")
	deleted := d.done("http://example.com/a.jpg")
	for _, p := range []*productd.Product{cached, deleted} {
		if _, err := d.cache.FindProductByID(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Behind the cache's back: nothing invalidates.
	d.exec(`UPDATE products SET product_name = 'changed', version = version + 1 WHERE id = $1`, cached.ID)
	d.exec(`DELETE FROM products WHERE id = $1`, deleted.ID)

	ch := amqptest.Channel(t)
	for range 3 {
		if err := ch.PublishWithContext(ctx, d.topo.DeadLetterExchange, "", false, false, amqp.Publishing{Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	awaitDepth(t, d.topo.ParkingQueue, 3)

	cfg := d.config()
	cfg.ObjectGrace = time.Nanosecond
	cfg.MaxFindings = 3
	r := d.run(cfg)
	expect(t, r, map[string]int64{
		audit.CheckStuckProducts:  1,
		audit.CheckOutboxPending:  1,
		audit.CheckOutboxDead:     1,
		audit.CheckMissingObjects: 3,
		audit.CheckOrphanObjects:  6,
		audit.CheckParked:         3,
		audit.CheckStaleCache:     2,
	}, map[string][]string{
		audit.CheckStuckProducts:  {fmt.Sprint("product ", stuck.ID)},
		audit.CheckOutboxPending:  {fmt.Sprint("outbox row ", oldRow)},
		audit.CheckOutboxDead:     {fmt.Sprint("outbox row ", deadRow)},
		audit.CheckStaleCache:     {fmt.Sprint("product ", cached.ID), fmt.Sprint("product ", deleted.ID)},
		audit.CheckParked:         {"queue " + d.topo.ParkingQueue},
		audit.CheckMissingObjects: {fmt.Sprint("product ", lost.ID), fmt.Sprint("product ", foreign.ID), fmt.Sprint("product ", withGoneOriginal.ID)},
	})
	if r.OK() {
		t.Error("a broken deployment is OK")
	}
	if missing := fmt.Sprint(r.Result(audit.CheckMissingObjects).Findings); !strings.Contains(missing, lostKey) {
		t.Errorf("the missing object %s is not named: %s", lostKey, missing)
	}

	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"VIOLATED", "and 3 more", "17 violations"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var decoded audit.Report
	if b, err := json.Marshal(r); err != nil || json.Unmarshal(b, &decoded) != nil || decoded.Violations() != r.Violations() {
		t.Errorf("JSON report does not read back: %v", err)
	}

	// With the default grace the young objects are not orphans yet.
	r = d.run(d.config())
	if got := r.Result(audit.CheckOrphanObjects).Violations; got != 0 {
		t.Errorf("objects seconds old reported as orphans: %+v", r.Result(audit.CheckOrphanObjects).Findings)
	}
}

func awaitDepth(t *testing.T, queue string, n int) {
	t.Helper()
	deadline := time.Now().Add(amqptest.Timeout)
	for amqptest.Depth(t, queue) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %d messages", queue, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestChecksWithoutTheirServiceAreSkippedOrFail(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	r := d.run(audit.Config{DB: d.pool})
	for _, check := range []string{audit.CheckMissingObjects, audit.CheckOrphanObjects, audit.CheckParked, audit.CheckStaleCache} {
		if r.Result(check).Skipped == "" {
			t.Errorf("%s ran without its service", check)
		}
	}
	if !r.OK() {
		t.Errorf("skipped checks made the report fail: %v", r.Errors())
	}

	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer down.Close()
	gone, err := storage.New(storage.Config{Endpoint: "127.0.0.1:1", Bucket: "b", PublicURL: "http://127.0.0.1:1/b", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	r = d.run(audit.Config{DB: d.pool, Redis: down, Store: gone, AMQPURL: "amqp://guest:guest@127.0.0.1:1/"})
	for _, check := range []string{audit.CheckMissingObjects, audit.CheckParked, audit.CheckStaleCache} {
		if r.Result(check).Error == "" {
			t.Errorf("%s finished with its service down", check)
		}
	}
	if r.OK() {
		t.Error("a report with unfinished checks is OK")
	}
	closed := dbtest.NewPool(t)
	closed.Close()
	r = d.run(audit.Config{DB: closed, Store: d.store})
	for _, check := range []string{audit.CheckStuckProducts, audit.CheckOutboxPending, audit.CheckOrphanObjects} {
		if r.Result(check).Error == "" {
			t.Errorf("%s finished with the database closed", check)
		}
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil || !strings.Contains(text.String(), "could not finish") {
		t.Errorf("text report of unfinished checks: %v\n%s", err, text.String())
	}
	if r.Result("no such check") != nil {
		t.Error("a check that does not exist has a result")
	}
	if _, err := audit.Run(context.Background(), audit.Config{}); err != audit.ErrNoDatabase {
		t.Errorf("Run without a database: %v", err)
	}
}
