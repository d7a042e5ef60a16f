package db_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/productd/productd"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

// A Postgres that restarts ends its sessions (57P01) and refuses new ones
// while it shuts down or starts up (57P03). Neither is the request's fault:
// the client must get a 503 to retry, not a 500. The chaos suite's
// postgres-restarted scenario saw 70 creates answered 500 for these.
func TestAServerRestartIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)

	// A session the server ends, as a fast restart of the server ends them all.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var pid uint32
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	_, ended := conn.Exec(ctx, `SELECT 1`)
	if ended == nil {
		t.Fatal("a statement on a terminated session succeeded")
	}

	for name, err := range map[string]error{
		"a terminated session": ended,
		// What pgx returns while the server starts up or shuts down: a
		// connect error wrapping the server's refusal.
		"a server starting up":   fmt.Errorf("failed to connect: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P03", Message: "the database system is starting up"}),
		"a server shutting down": fmt.Errorf("failed to connect: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P03", Message: "the database system is shutting down"}),
		"a server that crashed":  &pgconn.PgError{Severity: "FATAL", Code: "57P02", Message: "terminating connection because of crash of another server process"},
		"a connection exception": &pgconn.PgError{Severity: "FATAL", Code: "08006", Message: "connection failure"},
	} {
		if got := db.Unavailable("create product", err); productd.ErrorCode(got) != productd.EUNAVAILABLE || !errors.Is(got, err) {
			t.Errorf("%s: code %q (%v), want unavailable wrapping the cause", name, productd.ErrorCode(got), got)
		}
	}
	// A statement's own error stays the statement's.
	dup := &pgconn.PgError{Severity: "ERROR", Code: "23505", Message: "duplicate key value violates unique constraint"}
	if got := db.Unavailable("create product", dup); productd.ErrorCode(got) == productd.EUNAVAILABLE {
		t.Errorf("a unique violation: %v, want it not unavailable", got)
	}
}
