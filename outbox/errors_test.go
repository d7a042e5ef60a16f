package outbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/productd/productd"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/outbox"
)

// Every function says what it was doing when the database fails it.
func TestDatabaseFailuresAreReportedWithWhatWasBeingDone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := db.Open(ctx, dbtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A failed statement aborts the transaction: every later one fails.
	_, _ = tx.Exec(ctx, `SELECT 1/0`)
	ev, err := outbox.NewEvent(productd.EventProductCreated, 1, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, claimErr := outbox.Claim(ctx, tx, 1)
	releaseErr := outbox.Release(ctx, tx, []int64{1})
	markErr := outbox.MarkFailed(ctx, tx, []outbox.Failure{{ID: 1}})
	enqueueErr := outbox.Enqueue(ctx, tx, ev)
	_ = tx.Rollback(ctx)

	// A closed pool fails every statement.
	pool.Close()
	_, statsErr := outbox.ReadStats(ctx, pool)
	_, listErr := outbox.ListDead(ctx, pool, outbox.DeadFilter{}, 0, 1)
	_, requeueAllErr := outbox.RequeueDead(ctx, pool, outbox.DeadFilter{})
	_, _, retriesErr := outbox.ReadRetries(ctx, pool, 1)
	_, entriesErr := outbox.ProductEntries(ctx, pool, 7, 1)
	_, deleteErr := outbox.DeletePublished(ctx, pool, time.Now(), 1)
	for want, err := range map[string]error{
		"claim outbox rows":             claimErr,
		"release 1 outbox rows":         releaseErr,
		"mark 1 outbox rows failed":     markErr,
		"insert outbox row for event":   enqueueErr,
		"read outbox stats":             statsErr,
		"list dead outbox rows":         listErr,
		"requeue outbox row 7":          outbox.Requeue(ctx, pool, 7),
		"requeue dead outbox rows":      requeueAllErr,
		"discard outbox row 7":          outbox.Discard(ctx, pool, 7),
		"delete published outbox rows":  deleteErr,
		"read outbox retries":           retriesErr,
		"read outbox rows of product 7": entriesErr,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error about %q, got %v", want, err)
		}
		if productd.ErrorCode(err) == productd.ENOTFOUND {
			t.Errorf("%s: a failing database is not a missing row: %v", want, err)
		}
	}
}
