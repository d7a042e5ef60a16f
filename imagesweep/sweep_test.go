package imagesweep_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd"
	"github.com/productd/productd/chores"
	"github.com/productd/productd/db"
	"github.com/productd/productd/imagesweep"
	"github.com/productd/productd/internal/choretest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
)

// fixture is a database with products whose events were published.
type fixture struct {
	t    *testing.T
	pool *pgxpool.Pool
	svc  *db.ProductService
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool := dbtest.NewPool(t)
	return &fixture{t: t, pool: pool, svc: db.NewProductService(pool)}
}

// stuck creates a product whose images have waited age (a Postgres
// interval) with no run, its event long published.
func (f *fixture) stuck(age string) *productd.Product {
	f.t.Helper()
	c, err := f.svc.CreateProduct(context.Background(), &productd.Product{UserID: 1, Name: "Mug", Price: 1, Images: []string{"http://example.com/a.jpg"}}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.exec(`UPDATE products SET image_activity_at = now() - $2::interval WHERE id = $1`, c.ProductID, age)
	f.exec(`UPDATE outbox SET status = 'published', published_at = now() WHERE product_id = $1`, c.ProductID)
	return c.Product
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.pool.Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatal(err)
	}
}

// state reads what the sweep changes on a product.
func (f *fixture) state(id int64) (p *productd.Product, reschedules int, reason string) {
	f.t.Helper()
	p, err := f.svc.FindProductByID(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.pool.QueryRow(context.Background(), `SELECT image_reschedules, image_reschedule_reason FROM products WHERE id = $1`, id).Scan(&reschedules, &reason); err != nil {
		f.t.Fatal(err)
	}
	return p, reschedules, reason
}

func (f *fixture) pendingEvents(id int64) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE product_id = $1 AND status = 'pending'`, id).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// Stuck images are scheduled again through the outbox, longest idle first
// and a batch at a time, with the reason recorded; fresh ones are left.
func TestSweepReschedulesStuckImages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	older, old, oldest := f.stuck("2 hours"), f.stuck("3 hours"), f.stuck("4 hours")
	fresh := f.stuck("1 minute")
	if _, err := f.svc.StartImageRun(ctx, old.ID, old.ImagesVersion); err != nil {
		t.Fatal(err)
	}
	f.exec(`UPDATE products SET image_activity_at = now() - interval '3 hours' WHERE id = $1`, old.ID)
	s := imagesweep.New(imagesweep.Config{Batch: 2}, f.pool, f.svc, logging.Discard())

	res, err := s.Sweep(ctx)
	if err != nil || res.Rescheduled != 2 || res.Paused {
		t.Fatalf("first sweep: %+v %v, want 2 re-scheduled", res, err)
	}
	for _, p := range []*productd.Product{oldest, old} {
		got, n, reason := f.state(p.ID)
		if got.ImageStatus != productd.ImageStatusPending || got.ImagesVersion <= p.ImagesVersion || n != 1 ||
			!strings.HasPrefix(reason, "sweep: ") || !strings.HasSuffix(reason, "(re-schedule 1 of 3)") || f.pendingEvents(p.ID) != 1 {
			t.Errorf("product %d after the sweep: %s at %d, %d re-schedules, reason %q, %d events waiting",
				p.ID, got.ImageStatus, got.ImagesVersion, n, reason, f.pendingEvents(p.ID))
		}
	}
	if _, _, reason := f.state(old.ID); !strings.Contains(reason, "processing with no run for 3h") {
		t.Errorf("reason %q does not say what the sweep found", reason)
	}
	f.exec(`UPDATE outbox SET status = 'published', published_at = now()`)
	if res, err := s.Sweep(ctx); err != nil || res.Rescheduled != 1 {
		t.Fatalf("second sweep: %+v %v, want the third re-scheduled", res, err)
	}
	if got, n, _ := f.state(older.ID); n != 1 || got.ImageStatus != productd.ImageStatusPending {
		t.Errorf("the third product: %d re-schedules", n)
	}
	if res, err := s.Sweep(ctx); err != nil || res.Rescheduled+res.Failed+res.Skipped != 0 {
		t.Fatalf("third sweep: %+v %v, want nothing stuck", res, err)
	}
	if _, n, _ := f.state(fresh.ID); n != 0 {
		t.Errorf("fresh images were re-scheduled")
	}
}

// Images stuck again after their last allowed re-schedule fail, saying so.
func TestSweepFailsImagesStuckForGood(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	p := f.stuck("2 hours")
	f.exec(`UPDATE products SET image_reschedules = 2 WHERE id = $1`, p.ID)
	res, err := imagesweep.New(imagesweep.Config{MaxReschedules: 2}, f.pool, f.svc, logging.Discard()).Sweep(ctx)
	if err != nil || res.Failed != 1 {
		t.Fatalf("sweep: %+v %v, want one failed", res, err)
	}
	got, _, _ := f.state(p.ID)
	if want := "the images never finished: pending with no run for 2h0m0s after 2 re-schedules; an operator must look at them"; got.ImageStatus != productd.ImageStatusFailed || got.ImageError != want {
		t.Fatalf("%s %q, want failed saying %q", got.ImageStatus, got.ImageError, want)
	}
}

// While the outbox is behind, products wait for their events: the sweep
// leaves them alone.
func TestSweepWaitsForABehindOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	p := f.stuck("2 hours")
	f.exec(`UPDATE outbox SET status = 'pending', created_at = now() - interval '2 hours' WHERE product_id = $1`, p.ID)
	res, err := imagesweep.New(imagesweep.Config{}, f.pool, f.svc, logging.Discard()).Sweep(ctx)
	if err != nil || !res.Paused || res.Rescheduled != 0 {
		t.Fatalf("sweep: %+v %v, want it paused", res, err)
	}
	if _, n, _ := f.state(p.ID); n != 0 {
		t.Fatal("re-scheduled behind the outbox")
	}
}

// finishing is a product service on which every product's images get
// their result just before the sweep acts on them.
type finishing struct{ *db.ProductService }

func (f finishing) finish(id int64) {
	p, err := f.FindProductByID(context.Background(), id)
	if err == nil {
		_, _ = f.ProductService.SetImageResult(context.Background(), productd.ImageResult{ProductID: id, ImagesVersion: p.ImagesVersion, Status: productd.ImageStatusDone})
	}
}

func (f finishing) RescheduleImages(ctx context.Context, r productd.Reschedule) (*productd.Product, error) {
	f.finish(r.ProductID)
	return f.ProductService.RescheduleImages(ctx, r)
}

func (f finishing) SetImageResult(ctx context.Context, res productd.ImageResult) (bool, error) {
	f.finish(res.ProductID)
	return f.ProductService.SetImageResult(ctx, res)
}

// Images that get their result while the sweep looks at them are left as
// they are, whether the sweep meant to re-schedule or to fail them.
func TestSweepSkipsImagesThatFinishMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	again, last := f.stuck("2 hours"), f.stuck("3 hours")
	f.exec(`UPDATE products SET image_reschedules = 3 WHERE id = $1`, last.ID)
	res, err := imagesweep.New(imagesweep.Config{}, f.pool, finishing{f.svc}, logging.Discard()).Sweep(ctx)
	if err != nil || res != (imagesweep.Result{Skipped: 2}) {
		t.Fatalf("sweep: %+v %v, want both skipped", res, err)
	}
	for _, p := range []*productd.Product{again, last} {
		if got, n, _ := f.state(p.ID); got.ImageStatus != productd.ImageStatusDone || n != map[int64]int{again.ID: 0, last.ID: 3}[p.ID] {
			t.Errorf("product %d: %s after %d re-schedules", p.ID, got.ImageStatus, n)
		}
	}
	f.pool.Close()
	if _, err := imagesweep.New(imagesweep.Config{}, f.pool, f.svc, logging.Discard()).Sweep(ctx); err == nil {
		t.Error("a sweep without its database succeeded")
	}
}

// Registered with the chores, the sweep runs on start and handles what it
// finds.
func TestSweepRunsAsAChore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.stuck("2 hours")
	sched := chores.New(f.pool, chores.Config{}, logging.Discard())
	if err := imagesweep.New(imagesweep.Config{}, f.pool, f.svc, logging.Discard()).Register(sched); err != nil {
		t.Fatal(err)
	}
	choretest.Run(t, sched)
	deadline := time.Now().Add(30 * time.Second)
	for _, n, _ := f.state(p.ID); n == 0; _, n, _ = f.state(p.ID) {
		if time.Now().After(deadline) {
			t.Fatal("the chore never re-scheduled the stuck images")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := imagesweep.New(imagesweep.Config{}, f.pool, f.svc, logging.Discard()).Register(sched); err == nil {
		t.Error("the sweep registered twice")
	}
}
