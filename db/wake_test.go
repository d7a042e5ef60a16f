package db_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

// The relays are woken after every commit that wrote an outbox row, and
// only then: not for a change that wrote none, a replayed create or a
// refused write.
func TestWritesWakeTheRelaysAfterCommittingAnEvent(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	var wakes atomic.Int32
	svc := db.NewProductServiceConfig(pool, db.ServiceConfig{Wake: func() {
		// Woken after the commit: another connection sees the row.
		if n := wakes.Add(1); int32(count(t, pool, "outbox")) < n {
			t.Errorf("wake %d came before its row was committed", n)
		}
	}})
	ctx := context.Background()
	expect := func(what string, want int32) {
		t.Helper()
		if got := wakes.Load(); got != want {
			t.Errorf("after %s: %d wakes, want %d", what, got, want)
		}
		if rows := int32(count(t, pool, "outbox")); rows != want {
			t.Errorf("after %s: %d outbox rows, want %d (one a wake)", what, rows, want)
		}
	}
	key := &productd.IdempotencyKey{Key: "k", RequestHash: []byte{1}}
	p := &productd.Product{UserID: 1, Name: "Mug", Price: 100, Images: []string{"http://example.com/a.jpg"}}
	if _, err := svc.CreateProduct(ctx, p, key); err != nil {
		t.Fatal(err)
	}
	expect("a create", 1)
	again := &productd.Product{UserID: 1, Name: "Mug", Price: 100, Images: []string{"http://example.com/a.jpg"}}
	if created, err := svc.CreateProduct(ctx, again, key); err != nil || !created.Replayed {
		t.Fatalf("retry: %+v, %v", created, err)
	}
	expect("a replayed create", 1)
	name := "Cup"
	if _, err := svc.UpdateProduct(ctx, p.ID, productd.ProductUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	expect("a change of name", 1)
	images := []string{"http://example.com/b.jpg"}
	if _, err := svc.UpdateProduct(ctx, p.ID, productd.ProductUpdate{Images: &images}); err != nil {
		t.Fatal(err)
	}
	expect("a change of images", 2)
	if _, err := svc.RescheduleImages(ctx, productd.Reschedule{ProductID: p.ID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	expect("a reschedule", 3)
	if err := svc.DeleteProduct(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	expect("a delete", 4)
	if err := svc.DeleteProduct(ctx, p.ID); productd.ErrorCode(err) != productd.ENOTFOUND {
		t.Fatalf("second delete: %v", err)
	}
	expect("a refused delete", 4)
}
