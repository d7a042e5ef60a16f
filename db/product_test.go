package db_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

func count(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// failInserts makes every insert into table fail, as a full disk or a
// broken constraint would.
func failInserts(t *testing.T, pool *pgxpool.Pool, table string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'insert refused by test'; END $$;
		CREATE TRIGGER fail_insert BEFORE INSERT ON `+table+` FOR EACH ROW EXECUTE FUNCTION fail_insert();`)
	if err != nil {
		t.Fatalf("install failing trigger on %s: %v", table, err)
	}
}

func TestCreateIsAtomic(t *testing.T) {
	t.Parallel()
	for _, failing := range []string{"outbox", "products"} {
		t.Run("failing "+failing, func(t *testing.T) {
			t.Parallel()
			pool := dbtest.NewPool(t)
			failInserts(t, pool, failing)
			svc := db.NewProductService(pool)
			p := &productd.Product{UserID: 1, Name: "Mug", Price: 100, Images: []string{"http://example.com/a.jpg"}}
			_, err := svc.CreateProduct(context.Background(), p, &productd.IdempotencyKey{Key: "k", RequestHash: []byte{1}})
			if err == nil {
				t.Fatal("CreateProduct succeeded although an insert fails")
			}
			if productd.ErrorCode(err) != productd.EINTERNAL {
				t.Errorf("error code = %q, want internal: %v", productd.ErrorCode(err), err)
			}
			for _, table := range []string{"products", "outbox", "idempotency_keys"} {
				if n := count(t, pool, table); n != 0 {
					t.Errorf("%s has %d rows after a failed create", table, n)
				}
			}
		})
	}
}

func TestUpdateAndDeleteAreAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	svc := db.NewProductService(pool)
	c, err := svc.CreateProduct(ctx, &productd.Product{UserID: 1, Name: "Mug", Price: 100, Images: []string{"http://example.com/a.jpg"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	failInserts(t, pool, "outbox")
	images := []string{"http://example.com/b.jpg"}
	if _, err := svc.UpdateProduct(ctx, c.ProductID, productd.ProductUpdate{Images: &images}); err == nil {
		t.Error("images update succeeded although its event cannot be written")
	}
	if err := svc.DeleteProduct(ctx, c.ProductID); err == nil {
		t.Error("delete succeeded although its event cannot be written")
	}
	p, err := svc.FindProductByID(ctx, c.ProductID)
	if err != nil {
		t.Fatalf("product gone after failed delete: %v", err)
	}
	if p.Version != 1 || p.Images[0] != "http://example.com/a.jpg" {
		t.Errorf("product changed by failed writes: %+v", p)
	}
}

func TestSetImageResultIsVersionGuarded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := db.NewProductService(dbtest.NewPool(t))
	c, err := svc.CreateProduct(ctx, &productd.Product{UserID: 1, Name: "Mug", Price: 100, Images: []string{"http://example.com/a.jpg"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := c.ProductID

	// A name change does not make the pending images stale.
	name := "Cup"
	if _, err := svc.UpdateProduct(ctx, id, productd.ProductUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	ok, err := svc.SetImageResult(ctx, productd.ImageResult{ProductID: id, ImagesVersion: 1, Status: productd.ImageStatusDone, CompressedImages: []string{"http://s3/a.jpg"}})
	if err != nil || !ok {
		t.Fatalf("result for current images: changed=%v err=%v", ok, err)
	}
	p, _ := svc.FindProductByID(ctx, id)
	if p.ImageStatus != productd.ImageStatusDone || p.CompressedImages[0] != "http://s3/a.jpg" || p.Version != 3 {
		t.Errorf("after result: %+v", p)
	}
	// The same result again, as a redelivery writes it, is no change at all.
	ok, err = svc.SetImageResult(ctx, productd.ImageResult{ProductID: id, ImagesVersion: 1, Status: productd.ImageStatusDone, CompressedImages: []string{"http://s3/a.jpg"}})
	if err != nil || ok {
		t.Errorf("repeated result: changed=%v err=%v, want no change", ok, err)
	}
	if again, _ := svc.FindProductByID(ctx, id); again.Version != p.Version || !again.UpdatedAt.Equal(p.UpdatedAt) {
		t.Errorf("repeated result moved the version %d -> %d", p.Version, again.Version)
	}

	// New images make a result for the old ones stale.
	images := []string{"http://example.com/b.jpg"}
	p, err = svc.UpdateProduct(ctx, id, productd.ProductUpdate{Images: &images})
	if err != nil {
		t.Fatal(err)
	}
	if p.ImagesVersion != 4 || len(p.CompressedImages) != 0 || p.ImageStatus != productd.ImageStatusPending {
		t.Errorf("after images change: %+v", p)
	}
	ok, err = svc.SetImageResult(ctx, productd.ImageResult{ProductID: id, ImagesVersion: 1, Status: productd.ImageStatusFailed, Error: "late"})
	if err != nil || ok {
		t.Errorf("stale result: changed=%v err=%v, want no change", ok, err)
	}
	if p, _ := svc.FindProductByID(ctx, id); p.ImageStatus != productd.ImageStatusPending {
		t.Errorf("stale result changed the product: %+v", p)
	}
	// A result for a deleted product changes nothing.
	if err := svc.DeleteProduct(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ok, err := svc.SetImageResult(ctx, productd.ImageResult{ProductID: id, ImagesVersion: 4, Status: productd.ImageStatusDone}); ok || err != nil {
		t.Errorf("result for deleted product: changed=%v err=%v", ok, err)
	}
}

func TestOpenSizesThePool(t *testing.T) {
	t.Parallel()
	url := dbtest.New(t)
	pool, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if got := pool.Config().MaxConns; got != db.DefaultMaxConns {
		t.Errorf("MaxConns = %d, want %d", got, db.DefaultMaxConns)
	}
	small, err := db.Open(context.Background(), url+"&pool_max_conns=3")
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if got := small.Config().MaxConns; got != 3 {
		t.Errorf("MaxConns with pool_max_conns=3 = %d", got)
	}
}

func TestUnavailableDatabase(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	svc := db.NewProductService(pool)
	pool.Close()
	_, err := svc.FindProductByID(context.Background(), 1)
	if err == nil {
		t.Fatal("read from a closed pool succeeded")
	}
	if _, err := db.Open(context.Background(), "postgres://postgres@127.0.0.1:1/x?connect_timeout=1"); productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Errorf("Open on a closed port: code %q (%v), want unavailable", productd.ErrorCode(err), err)
	}
	if _, err := db.Open(context.Background(), "::not a url"); err == nil {
		t.Error("Open with a bad URL succeeded")
	}
	_, err = svc.CreateProduct(context.Background(), &productd.Product{UserID: 1, Name: "x"}, nil)
	if productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Errorf("create on closed pool: code %q (%v), want unavailable", productd.ErrorCode(err), err)
	}
}
