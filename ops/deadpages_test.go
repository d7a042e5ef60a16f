package ops_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/db"
	"github.com/productd/productd/ops"
)

// Dead rows come a page of ListLimit at a time, the next page's cursor
// given until the last; a requeue by a filter is recorded with the filter.
func TestDeadRowsPagedAndRequeueRecordedWithItsFilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, ops.Config{ListLimit: 2})
	ids := f.create(t, 3)
	f.exec(t, `UPDATE outbox SET status = 'dead', attempts = 10, last_error = 'nacked' WHERE product_id = ANY($1)`, ids)

	first, err := f.console.Dead(ctx, ops.DeadFilter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Rows) != 2 || first.Next != first.Rows[1].ID {
		t.Fatalf("first page: %d rows, next %d; want 2 rows and the second's id as the cursor", len(first.Rows), first.Next)
	}
	last, err := f.console.Dead(ctx, ops.DeadFilter{}, first.Next)
	if err != nil {
		t.Fatal(err)
	}
	if len(last.Rows) != 1 || last.Next != 0 {
		t.Errorf("last page: %d rows, next %d; want 1 row and no cursor", len(last.Rows), last.Next)
	}

	n, err := f.console.RequeueDeadMatching(ctx, "tester", ops.DeadFilter{EventType: "product.created", ProductID: ids[0]})
	if err != nil || n != 1 {
		t.Fatalf("requeue of one product's created event: %d, %v", n, err)
	}
	actions, err := f.console.Actions(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("event_type=product.created product_id=%d", ids[0]); len(actions) != 1 || actions[0].Detail != want {
		t.Errorf("recorded %+v, want the filter %q", actions, want)
	}
}

// The story of a product without images says there is nothing to do; that
// of a deleted product says it was deleted.
func TestStoryOfAProductWithoutImagesOrDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, ops.Config{})
	svc := db.NewProductService(f.pool)
	c, err := svc.CreateProduct(ctx, &productd.Product{UserID: 1, Name: "bare", Price: productd.Price(100)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := f.console.Product(ctx, c.ProductID); err != nil || !strings.Contains(s.Why, "no images") {
		t.Errorf("story of a product without images: %q (%v), want nothing to do", s.Why, err)
	}
	if err := svc.DeleteProduct(ctx, c.ProductID); err != nil {
		t.Fatal(err)
	}
	if s, err := f.console.Product(ctx, c.ProductID); err != nil || s.Why != "the product was deleted" {
		t.Errorf("story of a deleted product: %q (%v), want it deleted", s.Why, err)
	}
}
