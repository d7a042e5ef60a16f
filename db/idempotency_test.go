package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

// The migration that scopes idempotency keys by user keeps every committed
// key, now under the user its response names, and its rollback keeps the
// oldest use of a key that several users share.
func TestMigrateIdempotencyKeysByUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewEmpty(t)
	m := newMigrator(t, url)
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	downTo := func(name string) {
		t.Helper()
		for {
			res, err := m.Down(ctx)
			if err != nil {
				t.Fatalf("down to %s: %v", name, err)
			}
			if strings.Contains(db.SourceName(res.Source), name) {
				return
			}
		}
	}
	downTo("00040_idempotency_keys_by_user")

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO idempotency_keys (key, request_hash, product_id, response) VALUES
		('k-1', '\x01', 1, convert_to('{"id":1,"user_id":5,"product_name":"a"}', 'UTF8')),
		('k-2', '\x02', 2, convert_to('{"id":2,"user_id":6,"product_name":"b"}', 'UTF8'))`)
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	keys := func() string {
		t.Helper()
		rows, _ := conn.Query(ctx, `SELECT user_id::text || '/' || key FROM idempotency_keys ORDER BY user_id, key`)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, " ")
	}
	if got := keys(); got != "5/k-1 6/k-2" {
		t.Errorf("keys after up = %s, want 5/k-1 6/k-2", got)
	}

	// Another user may now use k-1; rolled back, the older use stays.
	exec(`INSERT INTO idempotency_keys (user_id, key, request_hash, created_at) VALUES (7, 'k-1', '\x03', now() + interval '1 minute')`)
	downTo("00040_idempotency_keys_by_user")
	rows, _ := conn.Query(ctx, `SELECT key || '=' || encode(request_hash, 'hex') FROM idempotency_keys ORDER BY key`)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "k-1=01 k-2=02" {
		t.Errorf("keys after down = %v, want k-1=01 k-2=02", got)
	}
}
