package db

import (
	"context"
	"database/sql"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/productd/productd/migrations"
)

// Migrator applies the embedded migrations to one database. Concurrent
// migrators on the same database take turns through a Postgres advisory lock,
// so that several processes starting at once cannot apply a step twice.
type Migrator struct {
	db       *sql.DB
	provider *goose.Provider
}

// NewMigrator opens a connection to databaseURL for migrating it. Close it
// when done.
func NewMigrator(databaseURL string) (*Migrator, error) {
	cfg, err := parseConnConfig(databaseURL)
	if err != nil {
		return nil, err
	}
	sqlDB := stdlib.OpenDB(*cfg)
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("create migration lock: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.SQL,
		goose.WithGoMigrations(migrations.Go()...),
		goose.WithSessionLocker(locker),
	)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return &Migrator{db: sqlDB, provider: provider}, nil
}

// Close closes the migrator's connection.
func (m *Migrator) Close() error { return m.db.Close() }

// Up applies every pending migration.
func (m *Migrator) Up(ctx context.Context) ([]*goose.MigrationResult, error) {
	res, err := m.provider.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate up: %w", err)
	}
	return res, nil
}

// Down rolls back the latest applied migration.
func (m *Migrator) Down(ctx context.Context) (*goose.MigrationResult, error) {
	res, err := m.provider.Down(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate down: %w", err)
	}
	return res, nil
}

// Reset rolls back every applied migration.
func (m *Migrator) Reset(ctx context.Context) ([]*goose.MigrationResult, error) {
	res, err := m.provider.DownTo(ctx, 0)
	if err != nil {
		return res, fmt.Errorf("migrate down to 0: %w", err)
	}
	return res, nil
}

// Status writes one line per migration: its version, source and whether it
// is applied.
func (m *Migrator) Status(ctx context.Context, w io.Writer) error {
	statuses, err := m.provider.Status(ctx)
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}
	for _, s := range statuses {
		applied := "pending"
		if s.State == goose.StateApplied {
			applied = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		if _, err := fmt.Fprintf(w, "%05d  %-28s %s\n", s.Source.Version, SourceName(s.Source), applied); err != nil {
			return err
		}
	}
	return nil
}

// SourceName names a migration for people: its file, or what a Go migration
// does.
func SourceName(src *goose.Source) string {
	if src.Path != "" {
		return src.Path
	}
	return "(go) river schema"
}
