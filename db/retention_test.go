package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/productd/productd/chores"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
)

// The idempotency-key retention chore, registered by its owner and run by
// the process's chores, deletes the expired keys and keeps the others.
func TestKeyRetentionChoreDeletesExpiredKeys(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO idempotency_keys (user_id, key, request_hash, created_at) VALUES
			(1, 'old1', '\x00', now() - interval '25 hours'), (2, 'old2', '\x00', now() - interval '3 days'),
			(2, 'old3', '\x00', now() - interval '30 hours'), (1, 'new', '\x00', now() - interval '1 hour')`)
	if err != nil {
		t.Fatal(err)
	}
	s := chores.New(pool, chores.Config{}, logging.Discard())
	if err := db.RegisterKeyRetention(s, pool, db.KeyRetentionConfig{Batch: 2}, logging.Discard()); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("chores: %v", err)
		}
	}()

	deadline := time.Now().Add(30 * time.Second)
	for {
		var keys string
		if err := pool.QueryRow(ctx, `SELECT string_agg(key, ',' ORDER BY key) FROM idempotency_keys`).Scan(&keys); err != nil {
			t.Fatal(err)
		}
		if keys == "new" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys left %q, want only the new one", keys)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKeyRetentionRefusesNegativeSettings(t *testing.T) {
	t.Parallel()
	s := chores.New(nil, chores.Config{}, logging.Discard())
	for _, cfg := range []db.KeyRetentionConfig{{Retention: -time.Hour}, {Batch: -1}, {Interval: -time.Second}} {
		if err := db.RegisterKeyRetention(s, nil, cfg, logging.Discard()); err == nil {
			t.Errorf("registered with %+v", cfg)
		}
	}
	if err := db.RegisterKeyRetention(s, nil, db.KeyRetentionConfig{}, logging.Discard()); err != nil {
		t.Fatal(err)
	}
	if got := s.Kinds(); len(got) != 1 || got[0] != (db.KeyRetentionArgs{}).Kind() {
		t.Errorf("kinds %v", got)
	}
}
