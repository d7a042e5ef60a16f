package db_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

// Uploads belong to the product that claimed them, until a change of its
// images drops them or it is deleted; only unowned ones are ever removed.
func TestUploadOwnership(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	svc := db.NewProductService(pool)
	up := func(name string) productd.Upload {
		u := productd.Upload{Key: "originals/" + name + ".png", URL: "http://s3/originals/" + name + ".png"}
		if err := db.StageUpload(ctx, pool, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	u1, u2, u3 := up("1"), up("2"), up("3")
	c, err := svc.CreateProduct(ctx, &productd.Product{UserID: 1, Name: "Mug", Price: 1,
		Images: []string{"http://example.com/a.jpg", u1.URL, u2.URL}, Uploads: []productd.Upload{u1, u2}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := c.ProductID

	// The request's release after a commit it did not hear of removes
	// only what no product claimed.
	var removed []string
	remove := func(_ context.Context, keys []string) error { removed = append(removed, keys...); return nil }
	if err := db.ReleaseStagedUploads(ctx, pool, []string{u1.Key, u2.Key, u3.Key}, remove); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{u3.Key}) || !slices.Equal(owned(t, pool, id), []string{u1.Key, u2.Key}) {
		t.Fatalf("released %v, owned %v; want only the unclaimed %s released", removed, owned(t, pool, id), u3.Key)
	}

	// New images keep u2 and add u4: u1 is released with the change. A
	// product listing u2's URL without owning it changes nothing of it.
	u4 := up("4")
	images := []string{u2.URL, u4.URL}
	if _, err := svc.UpdateProduct(ctx, id, productd.ProductUpdate{Images: &images, Uploads: []productd.Upload{u4}}); err != nil {
		t.Fatal(err)
	}
	if ev := lastEvent(t, pool, id); !slices.Equal(ev.RemoveObjects, []string{u1.Key}) {
		t.Fatalf("images changed event removes %v, want %s", ev.RemoveObjects, u1.Key)
	}
	copier, err := svc.CreateProduct(ctx, &productd.Product{UserID: 2, Name: "Copy", Price: 1, Images: []string{u2.URL}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteProduct(ctx, copier.ProductID); err != nil {
		t.Fatal(err)
	}
	if ev := lastEvent(t, pool, copier.ProductID); len(ev.RemoveObjects) != 0 {
		t.Fatalf("deleting a product that owns nothing removes %v", ev.RemoveObjects)
	}
	if err := svc.DeleteProduct(ctx, id); err != nil {
		t.Fatal(err)
	}
	ev := lastEvent(t, pool, id)
	slices.Sort(ev.RemoveObjects)
	if !slices.Equal(ev.RemoveObjects, []string{u2.Key, u4.Key}) {
		t.Fatalf("delete event removes %v, want the product's uploads", ev.RemoveObjects)
	}

	// A key that was never staged, or was released, cannot be claimed.
	for _, bad := range []productd.Upload{{Key: "originals/never.png", URL: "http://s3/originals/never.png"}, u1} {
		_, err = svc.CreateProduct(ctx, &productd.Product{UserID: 1, Name: "Mug", Price: 1, Images: []string{bad.URL}, Uploads: []productd.Upload{bad}}, nil)
		if productd.ErrorCode(err) != productd.ECONFLICT {
			t.Errorf("claiming %s: %v, want a conflict", bad.Key, err)
		}
	}

	// The sweep removes what is unowned longer than its bound, objects
	// first: a failing removal keeps the rows for the next sweep.
	failing := func(context.Context, []string) error { return errors.New("storage down") }
	if n, err := db.SweepUnownedUploads(ctx, pool, time.Now().Add(time.Hour), 100, failing); err == nil || n != 0 {
		t.Fatalf("sweep with storage down: %d, %v", n, err)
	}
	if n, err := db.SweepUnownedUploads(ctx, pool, time.Now().Add(-time.Hour), 100, remove); err != nil || n != 0 {
		t.Fatalf("sweep of uploads unowned for less than the bound: %d, %v", n, err)
	}
	removed = nil
	if n, err := db.SweepUnownedUploads(ctx, pool, time.Now().Add(time.Hour), 2, remove); err != nil || n != 2 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if n, err := db.SweepUnownedUploads(ctx, pool, time.Now().Add(time.Hour), 2, remove); err != nil || n != 1 {
		t.Fatalf("second sweep: %d, %v", n, err)
	}
	slices.Sort(removed)
	if !slices.Equal(removed, []string{u1.Key, u2.Key, u4.Key}) {
		t.Fatalf("swept %v", removed)
	}
	if n := count(t, pool, "uploads"); n != 0 {
		t.Fatalf("%d upload rows left", n)
	}
}

// owned lists the keys of the uploads a product owns.
func owned(t *testing.T, pool *pgxpool.Pool, productID int64) []string {
	t.Helper()
	var keys []string
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(array_agg(object_key ORDER BY object_key), '{}') FROM uploads WHERE product_id = $1`, productID).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	return keys
}

// lastEvent reads the newest outbox event of a product.
func lastEvent(t *testing.T, pool *pgxpool.Pool, productID int64) productd.Event {
	t.Helper()
	var payload []byte
	if err := pool.QueryRow(context.Background(), `SELECT payload FROM outbox WHERE product_id = $1 ORDER BY id DESC LIMIT 1`, productID).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var ev productd.Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// With the database away, nothing about uploads is decided: every call
// fails, as unavailable, and removes nothing.
func TestUploadsWithTheDatabaseAway(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	svc := db.NewProductService(pool)
	pool.Close()
	removed := 0
	remove := func(context.Context, []string) error { removed++; return nil }
	u := productd.Upload{Key: "originals/a.png", URL: "http://s3/originals/a.png"}
	for name, err := range map[string]error{
		"stage":   db.StageUpload(ctx, pool, u),
		"release": db.ReleaseStagedUploads(ctx, pool, []string{u.Key}, remove),
		"finish":  svc.FinishImageRun(ctx, 1, 1),
	} {
		if productd.ErrorCode(err) != productd.EUNAVAILABLE {
			t.Errorf("%s with the database away: %v, want unavailable", name, err)
		}
	}
	if _, err := svc.FindStuckImages(ctx, time.Now(), 1); productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Errorf("find stuck images with the database away: %v", err)
	}
	if _, err := svc.StartImageRun(ctx, 1, 1); productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Errorf("start a run with the database away: %v", err)
	}
	if removed != 0 {
		t.Errorf("%d removals with the database away", removed)
	}
	if err := db.ReleaseStagedUploads(ctx, pool, nil, remove); err != nil {
		t.Errorf("releasing nothing: %v", err)
	}
}
