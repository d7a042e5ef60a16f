package outbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
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
	if s.Pending.N != 0 || s.Dead.N != 0 || s.OldestPendingAge != 0 || s.Created.Rows != 0 || s.PublishedRate.PerSecond != 0 {
		t.Errorf("empty outbox: %+v", s)
	}

	ids := enqueue(t, pool, 8)
	setRows(t, pool, `created_at = now() - interval '90 seconds'`, ids[0])
	setRows(t, pool, `next_attempt_at = now() + interval '1 hour', attempts = 2, last_error = 'nacked'`, ids[1])
	setRows(t, pool, `attempts = 1, last_error = 'returned'`, ids[7])
	setRows(t, pool, `status = 'dead'`, ids[2])
	setRows(t, pool, `status = 'published', published_at = now()`, ids[3], ids[4])
	setRows(t, pool, `status = 'published', published_at = now() - interval '2 hours', created_at = now() - interval '2 hours'`, ids[5])
	if _, err := pool.Exec(ctx, `ANALYZE outbox`); err != nil {
		t.Fatal(err)
	}

	s, err = outbox.ReadStats(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	exact := func(name string, c outbox.Count, want int64) {
		if c.N != want || c.Estimate {
			t.Errorf("%s = %+v, want exactly %d", name, c, want)
		}
	}
	exact("pending", s.Pending, 4)
	exact("due", s.Due, 3)
	exact("retrying", s.Retrying, 2)
	exact("dead", s.Dead, 1)
	if !s.Published.Estimate || s.Published.N != 3 {
		t.Errorf("published = %+v, want an estimate of 3", s.Published)
	}
	if s.OldestPendingAge < 90*time.Second || s.OldestPendingAge > 10*time.Minute {
		t.Errorf("oldest pending age = %v, want about 90s", s.OldestPendingAge)
	}
	// Seven rows created and two published in the last five minutes.
	if s.Created.Rows != 7 || s.Created.Window != outbox.RateWindow || s.PublishedRate.Rows != 2 {
		t.Errorf("rates: created %+v, published %+v", s.Created, s.PublishedRate)
	}
	if want := 2 / outbox.RateWindow.Seconds(); s.PublishedRate.PerSecond != want {
		t.Errorf("published per second = %v, want %v", s.PublishedRate.PerSecond, want)
	}

	groups, next, err := outbox.ReadRetries(ctx, pool, 10)
	if err != nil {
		t.Fatal(err)
	}
	wantGroups := []outbox.RetryGroup{{Attempts: 1, Rows: 1}, {Attempts: 2, Rows: 1}}
	if diff := cmp.Diff(wantGroups, groups, cmpopts.IgnoreFields(outbox.RetryGroup{}, "NextAttemptAt")); diff != "" {
		t.Errorf("retry groups (-want +got):\n%s", diff)
	}
	if len(next) != 2 || next[0].ID != ids[7] || next[0].LastError != "returned" || next[1].ID != ids[1] || next[1].Attempts != 2 {
		t.Errorf("next retries = %+v, want row %d then %d", next, ids[7], ids[1])
	}
}

// Above CountCap a count is the planner's estimate, said to be one; a rate
// whose sample fills before its window is measured over the sample's span.
func TestLargeCountsAreEstimatesAndRatesUseTheNewestRows(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	beforeInsert := time.Now()
	_, err := pool.Exec(ctx, `
		INSERT INTO outbox (event_id, event_type, product_id, payload, status, published_at, created_at)
		SELECT gen_random_uuid(), 'product.created', g, '{}', CASE WHEN g % 2 = 0 THEN 'published' ELSE 'pending' END,
		       CASE WHEN g % 2 = 0 THEN now() - g * interval '1 ms' END, now() - (30000 - g) * interval '1 ms'
		FROM generate_series(1, 30000) AS g`)
	if err != nil {
		t.Fatal(err)
	}
	afterInsert := time.Now()
	if _, err := pool.Exec(ctx, `ANALYZE outbox`); err != nil {
		t.Fatal(err)
	}
	beforeStats := time.Now()
	s, err := outbox.ReadStats(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	afterStats := time.Now()
	// The window runs from the sample's oldest row to the statement's now,
	// which lies that far after the insert's now.
	within := func(name string, r outbox.Rate, span time.Duration) {
		t.Helper()
		slowest := float64(outbox.RateSample) / (span + afterStats.Sub(beforeInsert)).Seconds()
		fastest := float64(outbox.RateSample) / (span + max(beforeStats.Sub(afterInsert), 0)).Seconds()
		if r.Rows != outbox.RateSample || r.PerSecond < slowest*0.99 || r.PerSecond > fastest*1.01 {
			t.Errorf("%s rate = %+v, want %d rows at %.0f to %.0f a second", name, r, outbox.RateSample, slowest, fastest)
		}
	}
	if !s.Pending.Estimate || s.Pending.N < 13000 || s.Pending.N > 17000 {
		t.Errorf("pending = %+v, want an estimate near 15000", s.Pending)
	}
	// The newest 5000 rows were published one every 2 ms, and created
	// one every 1 ms.
	within("published", s.PublishedRate, 10*time.Second)
	within("created", s.Created, 5*time.Second)
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
	for _, f := range []outbox.DeadFilter{{}, {EventType: "product.created"}, {ProductID: 3}, {ErrorContains: "nack"}} {
		if _, err := outbox.ListDead(ctx, pool, f, 0, 50); err != nil {
			t.Fatal(err)
		}
	}
	s, err := outbox.ReadStats(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pending.N != 2 || s.Dead.N != 1 || s.PublishedRate.Rows != 2 || s.Published.N < 150000 {
		t.Errorf("stats = %+v", s)
	}
}

func TestListDeadPagesNewestFirstThroughAFilter(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	ids := enqueue(t, pool, 6)
	setRows(t, pool, `status = 'dead', attempts = 10, last_error = 'nacked: queue full'`, ids[0], ids[2], ids[4])
	setRows(t, pool, `status = 'dead', attempts = 10, last_error = 'returned: NO_ROUTE', event_type = 'product.deleted', product_id = 9`, ids[5])

	first, err := outbox.ListDead(ctx, pool, outbox.DeadFilter{}, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || first[0].ID != ids[5] || first[1].ID != ids[4] {
		t.Fatalf("first page = %+v", first)
	}
	if d := first[1]; d.Attempts != 10 || d.LastError != "nacked: queue full" || d.EventType != "product.created" ||
		d.ProductID != 1 || len(d.EventID) != 36 || d.CreatedAt.IsZero() || d.DiedAt.IsZero() {
		t.Errorf("dead row = %+v", d)
	}
	next, err := outbox.ListDead(ctx, pool, outbox.DeadFilter{}, first[1].ID, 5)
	if err != nil || len(next) != 2 || next[0].ID != ids[2] || next[1].ID != ids[0] {
		t.Fatalf("second page = %+v, %v", next, err)
	}
	for f, want := range map[outbox.DeadFilter][]int64{
		{EventType: "product.deleted"}:                  {ids[5]},
		{ProductID: 9}:                                  {ids[5]},
		{ErrorContains: "QUEUE FULL"}:                   {ids[4], ids[2], ids[0]},
		{ErrorContains: "full", EventType: "product.x"}: nil,
	} {
		got, err := outbox.ListDead(ctx, pool, f, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("filter %+v: %d rows, want %v", f, len(got), want)
			continue
		}
		for i := range got {
			if got[i].ID != want[i] {
				t.Errorf("filter %+v: row %d is %d, want %d", f, i, got[i].ID, want[i])
			}
		}
	}
	if (outbox.DeadFilter{}).IsZero() != true || (outbox.DeadFilter{ProductID: 1}).IsZero() {
		t.Error("IsZero is wrong")
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

func TestRequeueDeadGoesInBatchesAndHonoursTheFilter(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO outbox (event_id, event_type, product_id, payload, status, attempts, last_error)
		SELECT gen_random_uuid(), CASE WHEN g <= 2500 THEN 'product.created' ELSE 'product.deleted' END, g, '{}', 'dead', 10,
		       CASE WHEN g % 2 = 0 THEN 'nacked' ELSE 'returned' END
		FROM generate_series(1, 2600) AS g`)
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, pool, 1)
	n, err := outbox.RequeueDead(ctx, pool, outbox.DeadFilter{EventType: "product.deleted", ErrorContains: "nack"})
	if err != nil || n != 50 {
		t.Fatalf("requeued %d deleted+nacked rows, %v; want 50", n, err)
	}
	n, err = outbox.RequeueDead(ctx, pool, outbox.DeadFilter{EventType: "product.created"})
	if err != nil || n != 2500 {
		t.Fatalf("requeued %d, %v; want 2500", n, err)
	}
	s, err := outbox.ReadStats(ctx, pool)
	if err != nil || s.Dead.N != 50 || s.Pending.N != 2551 {
		t.Errorf("after requeueing: %+v, %v", s, err)
	}
	if n, err := outbox.RequeueDead(ctx, pool, outbox.DeadFilter{}); err != nil || n != 50 {
		t.Errorf("requeue the rest: %d, %v", n, err)
	}
	if n, err := outbox.RequeueDead(ctx, pool, outbox.DeadFilter{}); err != nil || n != 0 {
		t.Errorf("nothing left to requeue, yet %d, %v", n, err)
	}
}

func TestProductEntriesTellAProductsHistory(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	ids := enqueue(t, pool, 3)
	setRows(t, pool, `product_id = 42, payload = '{"product_version":3}', status = 'published', published_at = now()`, ids[0])
	setRows(t, pool, `product_id = 42, payload = '{"product_version":4}', attempts = 2, last_error = 'nacked'`, ids[2])
	got, err := outbox.ProductEntries(ctx, pool, 42, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []outbox.Entry{
		{ID: ids[2], EventType: "product.created", ProductVersion: 4, Status: outbox.StatusPending, Attempts: 2, LastError: "nacked"},
		{ID: ids[0], EventType: "product.created", ProductVersion: 3, Status: outbox.StatusPublished},
	}
	// What the database assigns is checked apart: ids, times.
	ignore := cmpopts.IgnoreFields(outbox.Entry{}, "EventID", "CreatedAt", "NextAttemptAt", "PublishedAt")
	if diff := cmp.Diff(want, got, ignore); diff != "" {
		t.Fatalf("entries (-want +got):\n%s", diff)
	}
	if got[0].PublishedAt != nil || got[1].PublishedAt == nil {
		t.Errorf("published at: %v, %v; want only the second set", got[0].PublishedAt, got[1].PublishedAt)
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
