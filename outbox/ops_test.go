package outbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/outbox"
)

// setRows forces rows into a state, as a relay would have left them.
func setRows(t *testing.T, pool *pgxpool.Pool, set string, ids ...int64) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `UPDATE outbox SET `+set+` WHERE id = ANY($1)`, ids); err != nil {
		t.Fatal(err)
	}
}

func TestReadStats(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()

	s, err := outbox.ReadStats(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if s != (outbox.Stats{}) {
		t.Errorf("empty outbox: %+v", s)
	}

	ids := enqueue(t, pool, 7)
	setRows(t, pool, `created_at = now() - interval '90 seconds'`, ids[0])
	setRows(t, pool, `next_attempt_at = now() + interval '1 hour'`, ids[1])
	setRows(t, pool, `status = 'dead'`, ids[2])
	setRows(t, pool, `status = 'published', published_at = now()`, ids[3], ids[4])
	setRows(t, pool, `status = 'published', published_at = now() - interval '2 hours'`, ids[5])
	if _, err := pool.Exec(ctx, `ANALYZE outbox`); err != nil {
		t.Fatal(err)
	}

	s, err = outbox.ReadStats(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pending != 3 || s.Due != 2 || s.Dead != 1 || s.PublishedLastHour != 2 || s.PublishedEstimate != 3 {
		t.Errorf("stats = %+v", s)
	}
	if s.OldestPendingAge < 90*time.Second || s.OldestPendingAge > 10*time.Minute {
		t.Errorf("oldest pending age = %v, want about 90s", s.OldestPendingAge)
	}
}

// The dashboard's queries must not read the whole table: at a large outbox
// each must use an index (no sequential scan of outbox in its plan).
func TestStatsAndDeadPagesUseIndexesOnALargeOutbox(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO outbox (event_id, event_type, product_id, payload, status, published_at, created_at)
		SELECT gen_random_uuid(), 'product.created', g, '{}', 'published',
		       now() - interval '1 hour' - g * interval '10 ms', now() - interval '1 hour' - g * interval '10 ms'
		FROM generate_series(1, 200000) AS g`)
	if err != nil {
		t.Fatal(err)
	}
	ids := enqueue(t, pool, 5)
	setRows(t, pool, `status = 'dead'`, ids[0])
	setRows(t, pool, `status = 'published', published_at = now()`, ids[1], ids[2])
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE outbox`); err != nil {
		t.Fatal(err)
	}

	for name, q := range outbox.IndexedQueries() {
		rows, err := pool.Query(ctx, `EXPLAIN `+q.SQL, q.Args...)
		if err != nil {
			t.Fatalf("explain %s: %v", name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if plan := strings.Join(lines, "\n"); strings.Contains(plan, "Seq Scan on outbox") {
			t.Errorf("%s scans the whole outbox:\n%s", name, plan)
		}
	}
	s, err := outbox.ReadStats(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pending != 2 || s.Dead != 1 || s.PublishedLastHour != 2 || s.PublishedEstimate < 150000 {
		t.Errorf("stats = %+v", s)
	}
}

func TestListDeadPages(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	ids := enqueue(t, pool, 5)
	setRows(t, pool, `status = 'dead', attempts = 10, last_error = 'nacked'`, ids[0], ids[2], ids[4])

	first, err := outbox.ListDead(ctx, pool, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || first[0].ID != ids[0] || first[1].ID != ids[2] {
		t.Fatalf("first page = %+v", first)
	}
	if d := first[0]; d.Attempts != 10 || d.LastError != "nacked" || d.EventType != "product.created" ||
		d.ProductID != 1 || len(d.EventID) != 36 || d.CreatedAt.IsZero() || d.LastAttemptAt.IsZero() {
		t.Errorf("dead row = %+v", d)
	}
	next, err := outbox.ListDead(ctx, pool, first[1].ID, 2)
	if err != nil || len(next) != 1 || next[0].ID != ids[4] {
		t.Fatalf("second page = %+v, %v", next, err)
	}
}

func TestRequeueAndDiscard(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	ids := enqueue(t, pool, 3)
	setRows(t, pool, `status = 'dead', attempts = 10, last_error = 'nacked', next_attempt_at = now() + interval '1 hour'`, ids[0], ids[1])

	listener := listen(t, pool)
	if err := outbox.Requeue(ctx, pool, ids[0]); err != nil {
		t.Fatal(err)
	}
	if s := state(t, pool, ids[0]); s.Status != "pending" || s.Attempts != 0 || s.LastError != "nacked" || s.DueIn > 0 {
		t.Errorf("requeued row: %+v", s)
	}
	awaitNotification(t, listener)

	for name, err := range map[string]error{
		"requeue a pending row": outbox.Requeue(ctx, pool, ids[2]),
		"requeue a missing row": outbox.Requeue(ctx, pool, 999999),
		"discard a pending row": outbox.Discard(ctx, pool, ids[2]),
		"discard a missing row": outbox.Discard(ctx, pool, 999999),
	} {
		if productd.ErrorCode(err) != productd.ENOTFOUND {
			t.Errorf("%s: %v, want ENOTFOUND", name, err)
		}
	}

	if err := outbox.Discard(ctx, pool, ids[1]); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE id = $1`, ids[1]).Scan(&n); err != nil || n != 0 {
		t.Errorf("discarded row still there (%d, %v)", n, err)
	}
}

func TestRequeueAllDeadGoesInBatches(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO outbox (event_id, event_type, product_id, payload, status, attempts)
		SELECT gen_random_uuid(), 'product.created', g, '{}', 'dead', 10 FROM generate_series(1, 2500) AS g`)
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, pool, 1)
	n, err := outbox.RequeueAllDead(ctx, pool)
	if err != nil || n != 2500 {
		t.Fatalf("requeued %d, %v; want 2500", n, err)
	}
	s, err := outbox.ReadStats(ctx, pool)
	if err != nil || s.Dead != 0 || s.Pending != 2501 {
		t.Errorf("after requeueing all: %+v, %v", s, err)
	}
	if n, err := outbox.RequeueAllDead(ctx, pool); err != nil || n != 0 {
		t.Errorf("nothing left to requeue, yet %d, %v", n, err)
	}
}

func TestDeletePublishedDeletesOnlyOldPublishedRowsInBatches(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	ids := enqueue(t, pool, 6)
	setRows(t, pool, `status = 'published', published_at = now() - interval '2 hours'`, ids[0], ids[1], ids[2])
	setRows(t, pool, `status = 'published', published_at = now()`, ids[3])
	setRows(t, pool, `status = 'dead', created_at = now() - interval '2 hours'`, ids[4])
	setRows(t, pool, `created_at = now() - interval '2 hours'`, ids[5])

	before := time.Now().Add(-time.Hour)
	if n, err := outbox.DeletePublished(ctx, pool, before, 2); err != nil || n != 2 {
		t.Fatalf("first batch deleted %d, %v", n, err)
	}
	if n, err := outbox.DeletePublished(ctx, pool, before, 2); err != nil || n != 1 {
		t.Fatalf("second batch deleted %d, %v", n, err)
	}
	rows, err := pool.Query(ctx, `SELECT id FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if want := ids[3:]; len(left) != len(want) || left[0] != want[0] || left[1] != want[1] || left[2] != want[2] {
		t.Errorf("left %v, want %v", left, want)
	}
}

// listen returns a connection to pool's database listening on the outbox
// channel.
func listen(t *testing.T, pool *pgxpool.Pool) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `LISTEN `+outbox.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	return conn
}

func awaitNotification(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := conn.WaitForNotification(ctx); err != nil {
		t.Fatalf("no notification on %s: %v", outbox.NotifyChannel, err)
	}
}
