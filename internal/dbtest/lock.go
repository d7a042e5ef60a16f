package dbtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LockTable takes an ACCESS EXCLUSIVE lock on table, on a connection of
// pool, so that every statement on the table waits, and returns the
// function that releases it. The lock goes at the end of t at the latest;
// a pool closed before that waits for it, so release it first.
func LockTable(t testing.TB, pool *pgxpool.Pool, table string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("lock %s: %v", table, err)
	}
	tx, err := conn.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, `LOCK TABLE `+pgx.Identifier{table}.Sanitize()+` IN ACCESS EXCLUSIVE MODE`)
	}
	if err != nil {
		conn.Release()
		t.Fatalf("lock %s: %v", table, err)
	}
	released := false
	release = func() {
		if released {
			return
		}
		released = true
		if err := tx.Rollback(ctx); err != nil {
			t.Errorf("release the lock on %s: %v", table, err)
		}
		conn.Release()
	}
	t.Cleanup(release)
	return release
}
