package db_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/productd/productd"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

// Every connection of the pool has a statement_timeout, so that a
// statement without a deadline of its own still ends: it fails EUNAVAILABLE,
// a 503 the client may retry. One given in the URL wins.
func TestStatementTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.New(t)
	show := func(cfg db.Config) string {
		t.Helper()
		pool, err := db.OpenConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var v string
		if err := pool.QueryRow(ctx, `SHOW statement_timeout`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := show(db.Config{URL: url}); got != "30s" {
		t.Errorf("default statement_timeout = %s, want 30s", got)
	}
	if got := show(db.Config{URL: url + "&statement_timeout=5000", StatementTimeout: time.Second}); got != "5s" {
		t.Errorf("statement_timeout from the URL = %s, want 5s", got)
	}

	pool, err := db.OpenConfig(ctx, db.Config{URL: url, StatementTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	unlock := dbtest.LockTable(t, pool, "products")
	defer unlock() // before pool.Close, which waits for the lock's connection
	_, err = db.NewProductService(pool).FindProducts(ctx, productd.ProductFilter{})
	if productd.ErrorCode(err) != productd.EUNAVAILABLE || !strings.Contains(productd.ErrorMessage(err), "in time") {
		t.Errorf("a list behind a lock, without a deadline: %v (code %q), want unavailable, not in time", err, productd.ErrorCode(err))
	}
	// The caller's deadline ends the wait for a connection too.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	small, err := db.Open(ctx, url+"&pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	held, err := small.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	if _, err := db.NewProductService(small).FindProductByID(short, 1); productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Errorf("a read with the pool exhausted: %v (code %q), want unavailable", err, productd.ErrorCode(err))
	}
}
