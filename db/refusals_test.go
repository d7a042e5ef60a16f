package db_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/productd/productd"
	"github.com/productd/productd/chores"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
)

// Every read and change of a service whose database went away fails
// EUNAVAILABLE, a 503 the client may retry, saying what it was doing.
func TestEveryOperationSaysWhatFailedWithoutTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	svc := db.NewProductService(pool)
	pool.Close()
	for doing, op := range map[string]func() error{
		"list products": func() error {
			_, err := svc.FindProducts(ctx, productd.ProductFilter{})
			return err
		},
		"set image result of product 7": func() error {
			_, err := svc.SetImageResult(ctx, productd.ImageResult{ProductID: 7, ImagesVersion: 1, Status: productd.ImageStatusDone})
			return err
		},
		"find stuck images": func() error {
			_, err := svc.FindStuckImages(ctx, time.Now(), 10)
			return err
		},
		"delete expired idempotency keys": func() error {
			_, err := db.DeleteIdempotencyKeys(ctx, pool, time.Now(), 10)
			return err
		},
		"sweep unowned uploads": func() error {
			_, err := db.SweepUnownedUploads(ctx, pool, time.Now(), 10, func(context.Context, []string) error { return nil })
			return err
		},
	} {
		err := op()
		if productd.ErrorCode(err) != productd.EUNAVAILABLE || !strings.HasPrefix(err.Error(), doing+": ") {
			t.Errorf("%s on a closed pool: %v (code %q), want unavailable, saying what it was doing", doing, err, productd.ErrorCode(err))
		}
	}
}

// What cannot be right is refused before the database is asked: the
// refusal names the setting or field.
func TestRefusedBeforeTheDatabaseIsAsked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := db.OpenConfig(ctx, db.Config{URL: "postgres://127.0.0.1:1/x", StatementTimeout: -time.Second}); err == nil || !strings.Contains(err.Error(), "StatementTimeout") {
		t.Errorf("OpenConfig with a negative StatementTimeout: %v, want a refusal naming it", err)
	}
	// A closed pool: a refusal that asked the database would be EUNAVAILABLE.
	pool := dbtest.NewPool(t)
	svc := db.NewProductService(pool)
	pool.Close()
	max, min := productd.Price(100), productd.Price(200)
	if _, err := svc.FindProducts(ctx, productd.ProductFilter{MinPrice: &min, MaxPrice: &max}); productd.ErrorCode(err) != productd.EINVALID || !strings.Contains(productd.ErrorMessage(err), "min_price") {
		t.Errorf("list with min_price over max_price: %v, want invalid, naming min_price", err)
	}
	if _, err := svc.CreateProduct(ctx, &productd.Product{UserID: 1, Name: ""}, nil); productd.ErrorCode(err) != productd.EUNPROCESSABLE || !strings.Contains(productd.ErrorMessage(err), "product_name") {
		t.Errorf("create without a name: %v (code %q), want unprocessable, naming product_name", err, productd.ErrorCode(err))
	}
}

// The retention chore is registered once: a second registration of its
// kind on the same scheduler is refused, saying which chore.
func TestKeyRetentionRegisteredTwiceIsRefused(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	s := chores.New(pool, chores.Config{}, logging.Discard())
	if err := db.RegisterKeyRetention(s, pool, db.KeyRetentionConfig{}, logging.Discard()); err != nil {
		t.Fatal(err)
	}
	err := db.RegisterKeyRetention(s, pool, db.KeyRetentionConfig{}, logging.Discard())
	if err == nil || !strings.HasPrefix(err.Error(), "idempotency key retention: ") {
		t.Errorf("second registration: %v, want a refusal naming the idempotency key retention", err)
	}
}
