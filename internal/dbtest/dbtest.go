// Package dbtest gives each test a database of its own, migrated and empty,
// so that the packages' tests can run in parallel against one Postgres.
//
// The first call in any process migrates a template database whose name
// carries a hash of the migrations; every test database is a fast copy of it
// (CREATE DATABASE ... TEMPLATE) and is dropped when the test ends.
package dbtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd/db"
	"github.com/productd/productd/migrations"
)

// AdminURL is the database tests connect to for creating and dropping their
// own. TEST_DATABASE_URL overrides it.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// templateOnce makes the template once per test binary; the name is unique
// to the migrations' content, so a changed migration gets a new template.
var templateOnce = sync.OnceValues(prepareTemplate)

// New creates a migrated, empty database for t, drops it when t ends, and
// returns its URL. A Postgres that does not answer fails the test with the
// command that starts it.
func New(t testing.TB) string {
	t.Helper()
	tmpl, err := templateOnce()
	if err != nil {
		t.Fatalf("prepare template database: %v\n(is Postgres running? run `scripts/services up`)", err)
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("connect to Postgres at %s: %v\n(run `scripts/services up`)", AdminURL(), err)
	}
	defer admin.Close(ctx)
	reapOnce(t, admin)

	name := fmt.Sprintf("productd_test_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE `+tmpl); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), AdminURL())
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return withDatabase(AdminURL(), name)
}

// NewPool returns a pool on a fresh test database; both go away with t.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), New(t))
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// NewEmpty creates a database without any migration applied, for testing the
// migrations themselves.
func NewEmpty(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("connect to Postgres at %s: %v\n(run `scripts/services up`)", AdminURL(), err)
	}
	defer admin.Close(ctx)
	reapOnce(t, admin)
	name := fmt.Sprintf("productd_test_empty_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create empty test database: %v", err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), AdminURL()); err == nil {
			defer c.Close(context.Background())
			_, _ = c.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
		}
	})
	return withDatabase(AdminURL(), name)
}

func prepareTemplate() (string, error) {
	hash, err := migrationsHash()
	if err != nil {
		return "", err
	}
	return makeTemplate("productd_tmpl_" + hash)
}

// makeTemplate makes the migrated template database name unless it is
// there, and returns name.
func makeTemplate(name string) (string, error) {
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer admin.Close(ctx)

	// Test binaries of several packages start at once: one of them builds
	// the template while the others wait on the lock.
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(727271)`); err != nil {
		return "", fmt.Errorf("lock template: %w", err)
	}
	defer admin.Exec(ctx, `SELECT pg_advisory_unlock(727271)`) //nolint:errcheck // released on close anyway

	var ready bool
	err = admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, name).Scan(&ready)
	if err != nil || ready {
		return name, err
	}
	// A build that died half-way leaves a non-template database behind.
	if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		return "", fmt.Errorf("drop stale template: %w", err)
	}
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	m, err := db.NewMigrator(withDatabase(AdminURL(), name))
	if err != nil {
		return "", err
	}
	_, err = m.Up(ctx)
	m.Close()
	if err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+name+` WITH IS_TEMPLATE true`); err != nil {
		return "", fmt.Errorf("mark template: %w", err)
	}
	// Templates of other migration sets stay a day: checkouts of other
	// branches on the same machine may be copying from them right now.
	// The comment records when each was made.
	if _, err := admin.Exec(ctx, fmt.Sprintf(`COMMENT ON DATABASE %s IS '%d'`, name, time.Now().Unix())); err != nil {
		return "", fmt.Errorf("date template: %w", err)
	}
	if err := dropStaleTemplates(ctx, admin, name, time.Now().Add(-templateLifetime)); err != nil {
		return "", err
	}
	return name, nil
}

// templateLifetime is how long a template of another migration set is kept.
const templateLifetime = 24 * time.Hour

// dropStaleTemplates drops the templates other than keep that were made
// before cutoff, or whose making time is unknown.
func dropStaleTemplates(ctx context.Context, admin *pgx.Conn, keep string, cutoff time.Time) error {
	rows, err := admin.Query(ctx, `
		SELECT d.datname FROM pg_database d
		LEFT JOIN pg_shdescription s ON s.objoid = d.oid AND s.classoid = 'pg_database'::regclass
		WHERE d.datname LIKE 'productd_tmpl_%' AND d.datname <> $1
		  AND coalesce(CASE WHEN s.description ~ '^[0-9]+$' THEN s.description::bigint END, 0) < $2`,
		keep, cutoff.Unix())
	if err != nil {
		return fmt.Errorf("list stale templates: %w", err)
	}
	stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list stale templates: %w", err)
	}
	for _, o := range stale {
		_, _ = admin.Exec(ctx, `ALTER DATABASE `+o+` WITH IS_TEMPLATE false`)
		_, _ = admin.Exec(ctx, `DROP DATABASE IF EXISTS `+o+` WITH (FORCE)`)
	}
	return nil
}

func migrationsHash() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "river=%d\n", migrations.RiverVersion)
	err := fs.WalkDir(migrations.SQL, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.SQL, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\n%s\n", path, b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// withDatabase returns rawURL with its database name replaced by name.
func withDatabase(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(fmt.Sprintf("dbtest: bad admin url: %v", err))
	}
	u.Path = "/" + strings.TrimPrefix(name, "/")
	return u.String()
}
