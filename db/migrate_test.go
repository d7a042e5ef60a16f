package db_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

func tables(t *testing.T, url string) []string {
	t.Helper()
	return column(t, url, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'goose_db_version' ORDER BY 1`)
}

// column returns the text column that query selects in url's database.
func column(t *testing.T, url, query string) []string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(context.Background(), query)
	values, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return values
}

// newMigrator returns a migrator on url that is closed when t ends.
func newMigrator(t *testing.T, url string) *db.Migrator {
	t.Helper()
	m, err := db.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMigrateUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewEmpty(t)
	m := newMigrator(t, url)

	want := []string{"idempotency_keys", "ops_actions", "outbox", "products", "relay_control", "relay_status", "river_job", "river_leader", "river_migration", "river_notification", "river_queue", "uploads"}
	for round := 1; round <= 2; round++ {
		res, err := m.Up(ctx)
		if err != nil {
			t.Fatalf("round %d: up: %v", round, err)
		}
		if got := tables(t, url); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("round %d: tables after up = %v, want %v", round, got, want)
		}
		var status bytes.Buffer
		if err := m.Status(ctx, &status); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(status.String()), "\n")
		if len(res) < 2 || strings.Count(status.String(), "applied") != len(res) || len(lines) != len(res) ||
			!strings.Contains(status.String(), "(go) river schema") {
			t.Errorf("round %d: applied %d; status:\n%s", round, len(res), status.String())
		}
		if res, err := m.Up(ctx); err != nil || len(res) != 0 {
			t.Errorf("second up applied %d (%v), want none", len(res), err)
		}
		last, err := m.Down(ctx)
		if err != nil {
			t.Fatalf("round %d: down one step: %v", round, err)
		}
		status.Reset()
		if err := m.Status(ctx, &status); err != nil {
			t.Fatal(err)
		}
		after := strings.Split(strings.TrimSpace(status.String()), "\n")
		if !strings.HasSuffix(after[len(after)-1], " pending") || !strings.HasSuffix(after[len(after)-2], "Z") ||
			!strings.Contains(lines[len(lines)-1], db.SourceName(last.Source)) {
			t.Errorf("after one step down (%s):\n%s", db.SourceName(last.Source), status.String())
		}
		if _, err := m.Reset(ctx); err != nil {
			t.Fatalf("round %d: reset: %v", round, err)
		}
		if got := tables(t, url); len(got) != 0 {
			t.Errorf("round %d: tables after reset = %v", round, got)
		}
	}
	if _, err := db.NewMigrator("::bad"); err == nil {
		t.Error("NewMigrator with a bad URL succeeded")
	}
}
