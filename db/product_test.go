package db_test

import (
	"context"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

func TestCreateAndFind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := db.NewProductService(dbtest.NewPool(t))
	p := &productd.Product{UserID: 1, Name: "Mug", Price: 1050, Images: []string{"http://example.com/a.jpg"}}
	c, err := svc.CreateProduct(ctx, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.FindProductByID(ctx, c.Product.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Price != 1050 || got.ImageStatus != productd.ImageStatusPending || got.Images[0] != "http://example.com/a.jpg" {
		t.Fatalf("got %+v", got)
	}
	t.Logf("%s", c.Body)
}
