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
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(context.Background(),
		`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'goose_db_version' ORDER BY 1`)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMigrateUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewEmpty(t)
	m, err := db.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	want := []string{"idempotency_keys", "outbox", "products", "river_job", "river_leader", "river_migration", "river_notification", "river_queue"}
	for round := 1; round <= 2; round++ {
		res, err := m.Up(ctx)
		if err != nil {
			t.Fatalf("round %d: up: %v", round, err)
		}
		if len(res) != 2 {
			t.Errorf("round %d: applied %d migrations, want 2", round, len(res))
		}
		if got := tables(t, url); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("round %d: tables after up = %v, want %v", round, got, want)
		}
		var status bytes.Buffer
		if err := m.Status(ctx, &status); err != nil {
			t.Fatal(err)
		}
		if strings.Count(status.String(), "applied") != 2 || !strings.Contains(status.String(), "river schema") {
			t.Errorf("status after up:\n%s", status.String())
		}
		if res, err := m.Up(ctx); err != nil || len(res) != 0 {
			t.Errorf("second up applied %d (%v), want none", len(res), err)
		}
		if _, err := m.Down(ctx); err != nil {
			t.Fatalf("round %d: down one step: %v", round, err)
		}
		if got := tables(t, url); strings.Join(got, ",") != "idempotency_keys,outbox,products" {
			t.Errorf("after one step down: %v", got)
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
