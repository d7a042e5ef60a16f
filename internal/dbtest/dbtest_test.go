package dbtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productd/productd/internal/failtest"
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
		msg := failtest.Failures(t, open)
		if !strings.Contains(msg, "run `scripts/services up`") {
			t.Errorf("%s with Postgres away failed with %q, want the command that starts it", kind, msg)
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

// Templates of other migration sets are dropped only once they are a day
// old, so that a checkout of another branch copying from one keeps it.
func TestStaleTemplatesGoFreshOnesStay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := adminConn(t)
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

// A template is made once: migrated, marked a template and dated. A
// database of its name left by a build that died half-way is made again.
// Not parallel: the build drops the templates of unknown age, which the
// other tests of this package make.
func TestTemplateIsMadeOnceAndRemadeAfterAHalfBuild(t *testing.T) {
	ctx := context.Background()
	admin := adminConn(t)
	name := fmt.Sprintf("productd_tmpl_test%d", time.Now().UnixNano())
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), `ALTER DATABASE `+name+` WITH IS_TEMPLATE false`)
		_, _ = admin.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	})
	// The half build: a plain database of the name, with a table of its own.
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatal(err)
	}
	half, err := pgx.Connect(ctx, withDatabase(AdminURL(), name))
	if err != nil {
		t.Fatal(err)
	}
	_, err = half.Exec(ctx, `CREATE TABLE half_built (id int)`)
	half.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}

	for range 2 {
		if got, err := makeTemplate(name); err != nil || got != name {
			t.Fatalf("makeTemplate(%s) = %s, %v", name, got, err)
		}
	}
	var isTemplate bool
	var made string
	if err := admin.QueryRow(ctx, `SELECT d.datistemplate, coalesce(shobj_description(d.oid, 'pg_database'), '')
		FROM pg_database d WHERE d.datname = $1`, name).Scan(&isTemplate, &made); err != nil {
		t.Fatal(err)
	}
	if !isTemplate || made == "" {
		t.Errorf("%s: template %v, dated %q; want a dated template", name, isTemplate, made)
	}
	conn, err := pgx.Connect(ctx, withDatabase(AdminURL(), name))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var products, halfBuilt bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('products') IS NOT NULL, to_regclass('half_built') IS NOT NULL`).Scan(&products, &halfBuilt); err != nil {
		t.Fatal(err)
	}
	if !products || halfBuilt {
		t.Errorf("the template has products: %v, the half build's table: %v; want the migrations alone", products, halfBuilt)
	}
}

// The databases of a test process that died go on the next reap; those of
// a process that runs, and those not named as a test's, stay.
func TestReapDropsOnlyTheDatabasesOfDeadProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := adminConn(t)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	stamp := time.Now().UnixNano()
	dead := fmt.Sprintf("productd_test_%d_%d", cmd.Process.Pid, stamp)
	alive := fmt.Sprintf("productd_test_%d_%d", os.Getpid(), stamp)
	other := fmt.Sprintf("productd_test_other_%d", stamp)
	for _, name := range []string{dead, alive, other} {
		if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = admin.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`) })
	}
	if err := reap(ctx, admin); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{dead: false, alive: true, other: true} {
		if got := exists(t, name); got != want {
			t.Errorf("%s there after the reap: %v, want %v", name, got, want)
		}
	}
}

// adminConn connects to the admin database until t ends: after the
// clean-ups registered later, which drop databases through it.
func adminConn(t *testing.T) *pgx.Conn {
	t.Helper()
	admin, err := pgx.Connect(context.Background(), AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	return admin
}
