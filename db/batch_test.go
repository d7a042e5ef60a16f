package db_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

func TestFindProductsByIDsReadsTheProductsThatExist(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	svc := db.NewProductService(pool)
	var ids []int64
	for _, name := range []string{"a", "b", "c"} {
		c, err := svc.CreateProduct(ctx, &productd.Product{UserID: 1, Name: name, Price: 100, Images: []string{"http://example.com/" + name + ".jpg"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ProductID)
	}
	if err := svc.DeleteProduct(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	got, err := svc.FindProductsByIDs(ctx, []int64{ids[2], ids[1], ids[0], 999999})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != ids[0] || got[1].ID != ids[2] {
		t.Fatalf("found %d products: %+v", len(got), got)
	}
	for _, p := range got {
		one, err := svc.FindProductByID(ctx, p.ID)
		if err != nil || !reflect.DeepEqual(one, p) {
			t.Errorf("product %d read alone: %+v (%v), in a batch: %+v", p.ID, one, err, p)
		}
	}
	pool.Close()
	if _, err := svc.FindProductsByIDs(ctx, ids); productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Errorf("on a closed pool: %v", err)
	}
}
