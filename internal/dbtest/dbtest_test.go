package dbtest

import (
	"context"
	"fmt"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Each kind of test database is there for the test and gone after it.
func TestDatabasesLiveAsLongAsTheirTest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind   string
		open   func(testing.TB) string
		tables []string
	}{
		{"migrated", New, []string{"idempotency_keys", "outbox", "products"}},
		{"pool", func(t testing.TB) string {
			pool := NewPool(t)
			if err := pool.Ping(context.Background()); err != nil {
				t.Fatalf("ping the new pool: %v", err)
			}
			return pool.Config().ConnString()
		}, []string{"idempotency_keys", "outbox", "products"}},
		{"empty", NewEmpty, nil},
	} {
		var name string
		t.Run(tc.kind, func(t *testing.T) {
			dbURL := tc.open(t)
			name = databaseName(t, dbURL)
			conn, err := pgx.Connect(context.Background(), dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			for _, table := range []string{"idempotency_keys", "outbox", "products"} {
				var there bool
				if err := conn.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&there); err != nil {
					t.Fatal(err)
				}
				if want := slices.Contains(tc.tables, table); there != want {
					t.Errorf("table %s there: %v, want %v", table, there, want)
					continue
				}
				var rows int
				if there {
					if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&rows); err != nil || rows != 0 {
						t.Errorf("table %s: %d rows (%v), want it empty", table, rows, err)
					}
				}
			}
		})
		if exists(t, name) {
			t.Errorf("%s database %s outlived its test", tc.kind, name)
		}
	}
}

// Without Postgres, a test fails with the command that starts it.
func TestPostgresAwaySaysHowToStartIt(t *testing.T) {
	t.Setenv("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=1")
	// The template of this binary is made again against the address above,
	// and forgotten afterwards.
	saved := templateOnce
	templateOnce = sync.OnceValues(prepareTemplate)
	t.Cleanup(func() { templateOnce = saved })

	for kind, open := range map[string]func(testing.TB){
		"New":      func(tb testing.TB) { New(tb) },
		"NewPool":  func(tb testing.TB) { NewPool(tb) },
		"NewEmpty": func(tb testing.TB) { NewEmpty(tb) },
	} {
		rec := &fatalRecorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			open(rec)
		}()
		<-done
		if !strings.Contains(rec.msg, "run `scripts/services up`") {
			t.Errorf("%s with Postgres away failed with %q, want the command that starts it", kind, rec.msg)
		}
	}
}

func databaseName(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

func exists(t *testing.T, name string) bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as testing's does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// Templates of other migration sets are dropped only once they are a day
// old, so that a checkout of another branch copying from one keeps it.
func TestStaleTemplatesGoFreshOnesStay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	// Closed after the clean-ups below, which drop through it.
	t.Cleanup(func() { admin.Close(context.Background()) })
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	fresh, stale := "productd_tmpl_fresh"+suffix, "productd_tmpl_stale"+suffix
	for name, made := range map[string]int64{fresh: time.Now().Unix(), stale: time.Now().Add(-48 * time.Hour).Unix()} {
		if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = admin.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`) })
		if _, err := admin.Exec(ctx, fmt.Sprintf(`COMMENT ON DATABASE %s IS '%d'`, name, made)); err != nil {
			t.Fatal(err)
		}
	}
	tmpl, err := templateOnce()
	if err != nil {
		t.Fatal(err)
	}
	if err := dropStaleTemplates(ctx, admin, tmpl, time.Now().Add(-templateLifetime)); err != nil {
		t.Fatal(err)
	}
	if !exists(t, fresh) || exists(t, stale) {
		t.Errorf("after the clean-up: fresh template there %v (want true), stale one there %v (want false)", exists(t, fresh), exists(t, stale))
	}
	if !exists(t, tmpl) {
		t.Errorf("the template in use, %s, was dropped", tmpl)
	}
}
