package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

// Migration 00095 deletes the periodic jobs an older release left queued in
// River's productd_relay queue, which no client works any more, and leaves
// finished jobs and every other queue alone.
func TestMigrationDropsJobsLeftInTheOldRelayQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.New(t)
	m, err := db.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for version := int64(0); version != 95; {
		res, err := m.Down(ctx)
		if err != nil {
			t.Fatal(err)
		}
		version = res.Source.Version
	}
	execSQL(t, url, `
		INSERT INTO river_job (kind, queue, state, args, finalized_at) VALUES
			('outbox_sweep',     'productd_relay',  'available', '{}', NULL),
			('outbox_retention', 'productd_relay',  'scheduled', '{}', NULL),
			('outbox_sweep',     'productd_relay',  'retryable', '{}', NULL),
			('outbox_sweep',     'productd_relay',  'completed', '{}', now()),
			('outbox_sweep',     'productd_chores', 'available', '{}', NULL)`)
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	left := column(t, url, `SELECT queue || ':' || state FROM river_job ORDER BY id`)
	if got := strings.Join(left, ","); got != "productd_relay:completed,productd_chores:available" {
		t.Errorf("jobs left: %s", got)
	}
}
