package db_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

// A migration that fails, on a database holding a table of the same name,
// leaves nothing of itself behind and stops the later ones; once the
// conflict is gone the same migrator finishes the work.
func TestMigrateUpStopsAtAFailingStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewEmpty(t)
	execSQL(t, url, `CREATE TABLE products (legacy text)`)
	m := newMigrator(t, url)

	res, err := m.Up(ctx)
	if err == nil || !strings.Contains(err.Error(), "migrate up") || !strings.Contains(err.Error(), "version:1)") {
		t.Fatalf("up over a conflicting table: %v, want an error naming the migration", err)
	}
	if len(res) != 0 {
		t.Errorf("up reported %d migrations applied before the failing first one", len(res))
	}
	if got := tables(t, url); strings.Join(got, ",") != "products" {
		t.Errorf("tables after the failed step = %v, want only the conflicting one", got)
	}
	var status bytes.Buffer
	if err := m.Status(ctx, &status); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(status.String(), "applied") {
		t.Errorf("status after the failed step:\n%s", status.String())
	}

	execSQL(t, url, `DROP TABLE products`)
	if res, err := m.Up(ctx); err != nil || len(res) < 2 {
		t.Fatalf("up after the conflict went: %d applied, %v", len(res), err)
	}
}

// Rolling back a database with nothing applied is an error, not a silent
// success an operator would take for a rollback.
func TestMigrateDownWithNothingApplied(t *testing.T) {
	t.Parallel()
	m := newMigrator(t, dbtest.NewEmpty(t))
	if res, err := m.Down(context.Background()); err == nil || !strings.Contains(err.Error(), "migrate down") {
		t.Errorf("down on an empty database: %v, %v", res, err)
	}
}

// Every step says what it was doing when the database is not there.
func TestMigrateWithDatabaseAway(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, err := db.NewMigrator("postgres://postgres@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, up := m.Up(ctx)
	_, down := m.Down(ctx)
	_, reset := m.Reset(ctx)
	status := m.Status(ctx, &bytes.Buffer{})
	for _, tc := range []struct {
		err  error
		want string
	}{{up, "migrate up: "}, {down, "migrate down: "}, {reset, "migrate down to 0: "}, {status, "migration status: "}} {
		if tc.err == nil || !strings.HasPrefix(tc.err.Error(), tc.want) {
			t.Errorf("with the database away: %v, want an error starting %q", tc.err, tc.want)
		}
	}
}

// `productd migrate status | head -1` must not report success when its
// output could not be written.
func TestMigrateStatusReportsAWriteFailure(t *testing.T) {
	t.Parallel()
	m := newMigrator(t, dbtest.New(t))
	broken := errors.New("broken pipe")
	if err := m.Status(context.Background(), failingWriter{broken}); !errors.Is(err, broken) {
		t.Errorf("status into a broken writer: %v, want %v", err, broken)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
