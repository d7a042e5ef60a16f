package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/productd/productd"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

// Done and failed are terminal for their images: a late or duplicate result
// changes neither, and a run cannot start on them.
func TestImageResultsAreTerminal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := db.NewProductService(dbtest.NewPool(t))
	for _, first := range []productd.ImageStatus{productd.ImageStatusDone, productd.ImageStatusFailed} {
		p := createWithImage(t, svc)
		res := productd.ImageResult{ProductID: p.ID, ImagesVersion: p.ImagesVersion, Status: first, CompressedImages: []string{"http://s3/a.jpg"}}
		if first == productd.ImageStatusFailed {
			res.CompressedImages, res.Error = nil, "bad"
		}
		if ok, err := svc.SetImageResult(ctx, res); !ok || err != nil {
			t.Fatalf("first result %s: changed=%v err=%v", first, ok, err)
		}
		before, _ := svc.FindProductByID(ctx, p.ID)
		for _, late := range []productd.ImageResult{
			{ProductID: p.ID, ImagesVersion: p.ImagesVersion, Status: productd.ImageStatusFailed, Error: "late"},
			{ProductID: p.ID, ImagesVersion: p.ImagesVersion, Status: productd.ImageStatusDone, CompressedImages: []string{"http://s3/b.jpg"}},
		} {
			if ok, err := svc.SetImageResult(ctx, late); ok || err != nil {
				t.Errorf("%s then %s: changed=%v err=%v, want no change", first, late.Status, ok, err)
			}
		}
		if run, err := svc.StartImageRun(ctx, p.ID, p.ImagesVersion); run.Started || err != nil {
			t.Errorf("a run started on %s images: %+v %v", first, run, err)
		}
		after, _ := svc.FindProductByID(ctx, p.ID)
		if after.ImageStatus != first || after.Version != before.Version || after.ImageError != before.ImageError {
			t.Errorf("%s product changed by late writes: %+v, was %+v", first, after, before)
		}
	}
	if _, err := svc.SetImageResult(ctx, productd.ImageResult{ProductID: 1, ImagesVersion: 1, Status: productd.ImageStatusProcessing}); err == nil {
		t.Error("processing was accepted as a result")
	}
}

// A run moves pending images to processing once, and counts until it ends
// or a result comes.
func TestImageRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	svc := db.NewProductService(pool)
	p := createWithImage(t, svc)
	runs := func() int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT image_runs FROM products WHERE id = $1`, p.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	run, err := svc.StartImageRun(ctx, p.ID, p.ImagesVersion)
	if err != nil || !run.Started || run.Unfinished != 0 {
		t.Fatalf("first run: %+v %v", run, err)
	}
	got, _ := svc.FindProductByID(ctx, p.ID)
	if got.ImageStatus != productd.ImageStatusProcessing || got.Version != p.Version+1 {
		t.Fatalf("after the first run started: %s version %d, want processing at %d", got.ImageStatus, got.Version, p.Version+1)
	}
	// A second run while the first never ended (its worker died) sees it;
	// the status does not change again, nor does the version.
	if run, err = svc.StartImageRun(ctx, p.ID, p.ImagesVersion); err != nil || !run.Started || run.Unfinished != 1 {
		t.Fatalf("second run: %+v %v", run, err)
	}
	if again, _ := svc.FindProductByID(ctx, p.ID); again.Version != got.Version {
		t.Errorf("a second run moved the version %d -> %d", got.Version, again.Version)
	}
	if err := svc.FinishImageRun(ctx, p.ID, p.ImagesVersion); err != nil || runs() != 1 {
		t.Fatalf("after one run finished: %d unfinished, %v", runs(), err)
	}
	// A run on other images is no run of these.
	if run, err := svc.StartImageRun(ctx, p.ID, p.ImagesVersion+1); run.Started || err != nil {
		t.Errorf("a run started for images the product does not have: %+v %v", run, err)
	}
	if ok, err := svc.SetImageResult(ctx, productd.ImageResult{ProductID: p.ID, ImagesVersion: p.ImagesVersion, Status: productd.ImageStatusDone}); !ok || err != nil {
		t.Fatalf("result after runs: %v %v", ok, err)
	}
	if n := runs(); n != 0 {
		t.Errorf("%d runs unfinished after the result", n)
	}
	// New images start a new count.
	images := []string{"http://example.com/b.jpg"}
	p2, err := svc.UpdateProduct(ctx, p.ID, productd.ProductUpdate{Images: &images})
	if err != nil {
		t.Fatal(err)
	}
	if run, err := svc.StartImageRun(ctx, p.ID, p2.ImagesVersion); err != nil || run.Unfinished != 0 {
		t.Errorf("first run on new images: %+v %v", run, err)
	}
	if run, err := svc.StartImageRun(ctx, 1<<40, 1); run.Started || err != nil {
		t.Errorf("a run on a missing product: %+v %v", run, err)
	}
}

// createWithImage creates a product with one image URL, pending.
func createWithImage(t *testing.T, svc *db.ProductService) *productd.Product {
	t.Helper()
	c, err := svc.CreateProduct(context.Background(), &productd.Product{UserID: 1, Name: "Mug", Price: 100, Images: []string{"http://example.com/a.jpg"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.Product
}

// Re-scheduling gives the images a new version, pending, with a new event
// and the reason recorded; its conditions refuse what they do not match,
// and new images start the count of re-schedules again.
func TestRescheduleImages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	svc := db.NewProductService(pool)
	p := createWithImage(t, svc)
	if ok, err := svc.SetImageResult(ctx, productd.ImageResult{ProductID: p.ID, ImagesVersion: p.ImagesVersion, Status: productd.ImageStatusFailed, Error: "bad"}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, err := svc.StartImageRun(ctx, p.ID, p.ImagesVersion); err != nil {
		t.Fatal(err)
	}
	for _, r := range []productd.Reschedule{
		{ProductID: p.ID, ImagesVersion: p.ImagesVersion + 1},
		{ProductID: p.ID, From: []productd.ImageStatus{productd.ImageStatusPending, productd.ImageStatusProcessing}},
	} {
		if _, err := svc.RescheduleImages(ctx, r); productd.ErrorCode(err) != productd.ECONFLICT {
			t.Errorf("re-schedule %+v of failed images at %d: %v, want a conflict", r, p.ImagesVersion, err)
		}
	}
	got, err := svc.RescheduleImages(ctx, productd.Reschedule{ProductID: p.ID, Reason: "operator: try again", ImagesVersion: p.ImagesVersion,
		From: []productd.ImageStatus{productd.ImageStatusFailed}})
	if err != nil {
		t.Fatal(err)
	}
	if got.ImageStatus != productd.ImageStatusPending || got.ImageError != "" || got.ImagesVersion != got.Version || got.Version != p.Version+2 {
		t.Fatalf("after the re-schedule: %+v", got)
	}
	if ev := lastEvent(t, pool, p.ID); ev.Type != productd.EventProductImagesChanged || ev.ProductVersion != got.ImagesVersion {
		t.Fatalf("event %+v, want images_changed at %d", ev, got.ImagesVersion)
	}
	var n, runs int
	var reason string
	read := func() {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT image_reschedules, image_reschedule_reason, image_runs FROM products WHERE id = $1`, p.ID).Scan(&n, &reason, &runs); err != nil {
			t.Fatal(err)
		}
	}
	if read(); n != 1 || reason != "operator: try again" || runs != 0 {
		t.Fatalf("recorded %d re-schedules, reason %q, %d runs", n, reason, runs)
	}
	images := []string{"http://example.com/b.jpg"}
	if _, err := svc.UpdateProduct(ctx, p.ID, productd.ProductUpdate{Images: &images}); err != nil {
		t.Fatal(err)
	}
	if read(); n != 0 || reason != "" {
		t.Fatalf("new images kept %d re-schedules, reason %q", n, reason)
	}

	if _, err := svc.RescheduleImages(ctx, productd.Reschedule{ProductID: 1 << 40}); productd.ErrorCode(err) != productd.ENOTFOUND {
		t.Errorf("re-schedule of a missing product: %v", err)
	}
	c, err := svc.CreateProduct(ctx, &productd.Product{UserID: 1, Name: "Bare", Price: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RescheduleImages(ctx, productd.Reschedule{ProductID: c.ProductID}); productd.ErrorCode(err) != productd.ECONFLICT {
		t.Errorf("re-schedule of a product without images: %v", err)
	}
}

// Stuck images are unfinished ones with no run for longer than the bound,
// longest idle first.
func TestFindStuckImages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	svc := db.NewProductService(pool)
	var ps []*productd.Product
	for range 4 {
		ps = append(ps, createWithImage(t, svc))
	}
	// 0 idle 3 h, 1 processing and idle 2 h, 2 done long ago, 3 fresh.
	if _, err := svc.StartImageRun(ctx, ps[1].ID, ps[1].ImagesVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetImageResult(ctx, productd.ImageResult{ProductID: ps[2].ID, ImagesVersion: ps[2].ImagesVersion, Status: productd.ImageStatusDone}); err != nil {
		t.Fatal(err)
	}
	for i, age := range []string{"3 hours", "2 hours", "5 hours"} {
		if _, err := pool.Exec(ctx, `UPDATE products SET image_activity_at = now() - $2::interval WHERE id = $1`, ps[i].ID, age); err != nil {
			t.Fatal(err)
		}
	}
	stuck, err := svc.FindStuckImages(ctx, time.Now().Add(-time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []productd.StuckImages{
		{ProductID: ps[0].ID, ImagesVersion: ps[0].ImagesVersion, Status: productd.ImageStatusPending},
		{ProductID: ps[1].ID, ImagesVersion: ps[1].ImagesVersion, Status: productd.ImageStatusProcessing},
	}
	if diff := cmp.Diff(want, stuck, cmpopts.IgnoreFields(productd.StuckImages{}, "Since")); diff != "" {
		t.Fatalf("stuck images (-want +got):\n%s", diff)
	}
	if stuck, err := svc.FindStuckImages(ctx, time.Now().Add(-time.Hour), 1); err != nil || len(stuck) != 1 {
		t.Fatalf("with a limit of 1: %+v %v", stuck, err)
	}
}
