package outbox_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/outbox"
)

// enqueue commits n events for product 1 and returns their row ids in order.
func enqueue(t *testing.T, pool *pgxpool.Pool, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for range n {
		ev, err := outbox.NewEvent(productd.EventProductCreated, 1, 1, []string{"http://img/a.jpg"})
		if err != nil {
			t.Fatal(err)
		}
		err = db.InTx(ctx, pool, func(tx pgx.Tx) error { return outbox.Enqueue(ctx, tx, ev) })
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := pool.QueryRow(ctx, `SELECT id FROM outbox WHERE event_id = $1`, ev.ID).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// inTx runs fn in a transaction that it rolls back, or commits when commit.
func inTx(t *testing.T, pool *pgxpool.Pool, commit bool, fn func(pgx.Tx)) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	fn(tx)
	if commit {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func claim(t *testing.T, tx pgx.Tx, limit int) []int64 {
	t.Helper()
	rows, err := outbox.Claim(context.Background(), tx, limit)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return ids
}

type rowState struct {
	Status    string
	Attempts  int
	LastError string
	DueIn     time.Duration
}

func state(t *testing.T, pool *pgxpool.Pool, id int64) rowState {
	t.Helper()
	var s rowState
	err := pool.QueryRow(context.Background(),
		`SELECT status, attempts, last_error, next_attempt_at - now() FROM outbox WHERE id = $1`, id).
		Scan(&s.Status, &s.Attempts, &s.LastError, &s.DueIn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestClaimSkipsRowsAnotherTransactionHolds(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ids := enqueue(t, pool, 5)

	inTx(t, pool, false, func(first pgx.Tx) {
		got := claim(t, first, 3)
		if !slices.Equal(got, ids[:3]) {
			t.Fatalf("first claim = %v, want %v", got, ids[:3])
		}
		inTx(t, pool, false, func(second pgx.Tx) {
			if got := claim(t, second, 10); !slices.Equal(got, ids[3:]) {
				t.Fatalf("second claim = %v, want %v", got, ids[3:])
			}
		})
	})
	// Both rolled back: every row is claimable again.
	inTx(t, pool, false, func(tx pgx.Tx) {
		if got := claim(t, tx, 10); len(got) != 5 {
			t.Fatalf("claim after rollback = %v", got)
		}
	})
}

func TestClaimReturnsTheRowAsEnqueued(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ids := enqueue(t, pool, 1)
	inTx(t, pool, false, func(tx pgx.Tx) {
		rows, err := outbox.Claim(context.Background(), tx, 1)
		if err != nil || len(rows) != 1 {
			t.Fatalf("claim: %v %v", rows, err)
		}
		r := rows[0]
		var ev productd.Event
		if err := json.Unmarshal(r.Payload, &ev); err != nil || ev.ID != r.EventID || ev.Type != productd.EventProductCreated {
			t.Errorf("payload %s does not decode to the row's event: %v", r.Payload, err)
		}
		if r.ID != ids[0] || r.EventType != "product.created" || r.ProductID != 1 || r.Attempts != 0 || r.CreatedAt.IsZero() {
			t.Errorf("claimed %+v", r)
		}
	})
}

func TestClaimedRowsArePublishedUnlessReleasedOrFailed(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	ids := enqueue(t, pool, 4)
	inTx(t, pool, true, func(tx pgx.Tx) {
		claim(t, tx, 4)
		if err := outbox.Release(ctx, tx, ids[3:]); err != nil {
			t.Fatal(err)
		}
		err := outbox.MarkFailed(ctx, tx, []outbox.Failure{
			{ID: ids[1], Error: "returned", RetryIn: time.Hour},
			{ID: ids[2], Error: "nacked", Dead: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := outbox.Release(ctx, tx, nil); err != nil {
			t.Fatal(err)
		}
		if err := outbox.MarkFailed(ctx, tx, nil); err != nil {
			t.Fatal(err)
		}
	})
	if s := state(t, pool, ids[0]); s.Status != "published" || s.Attempts != 0 {
		t.Errorf("published row: %+v", s)
	}
	if s := state(t, pool, ids[1]); s.Status != "pending" || s.Attempts != 1 || s.LastError != "returned" ||
		s.DueIn < 59*time.Minute || s.DueIn > time.Hour {
		t.Errorf("retried row: %+v", s)
	}
	if s := state(t, pool, ids[2]); s.Status != "dead" || s.Attempts != 1 || s.LastError != "nacked" {
		t.Errorf("dead row: %+v", s)
	}
	if s := state(t, pool, ids[3]); s.Status != "pending" || s.Attempts != 0 || s.DueIn > 0 {
		t.Errorf("released row: %+v", s)
	}
	var published, unpublished int
	err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE published_at > now() - interval '1 minute'), count(*) FILTER (WHERE published_at IS NULL) FROM outbox`).
		Scan(&published, &unpublished)
	if err != nil || published != 1 || unpublished != 3 {
		t.Errorf("published_at set on %d rows, unset on %d (%v)", published, unpublished, err)
	}
	// Only the released row is due.
	inTx(t, pool, false, func(tx pgx.Tx) {
		if got := claim(t, tx, 10); !slices.Equal(got, ids[3:]) {
			t.Errorf("claimed %v, want %v", got, ids[3:])
		}
	})
}

func TestAClaimThatRollsBackLeavesTheRowsPending(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ids := enqueue(t, pool, 2)
	inTx(t, pool, false, func(tx pgx.Tx) { claim(t, tx, 2) })
	for _, id := range ids {
		if s := state(t, pool, id); s.Status != "pending" || s.Attempts != 0 {
			t.Errorf("row %d after a rolled back claim: %+v", id, s)
		}
	}
}
