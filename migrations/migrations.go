// Package migrations holds productd's database schema as goose migrations,
// embedded in the binary, River's own schema included.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"
)

// SQL holds the numbered SQL migrations.
//
//go:embed *.sql
var SQL embed.FS

// RiverVersion is the River schema version that River's migration brings the
// database to. It is pinned so that upgrading the River module never changes
// the schema behind a deploy's back: raising it is a new goose migration.
const RiverVersion = 8

// riverMigrationVersion is the goose version of the step that installs River.
const riverMigrationVersion = 2

// Go returns the migrations written in Go: River's schema, installed through
// rivermigrate up to RiverVersion and removed completely on the way down.
func Go() []*goose.Migration {
	return []*goose.Migration{
		goose.NewGoMigration(riverMigrationVersion,
			&goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error { return migrateRiver(ctx, db, RiverVersion) }},
			&goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error { return migrateRiver(ctx, db, -1) }},
		),
	}
}

func migrateRiver(ctx context.Context, db *sql.DB, target int) error {
	migrator, err := rivermigrate.New(riverdatabasesql.New(db), nil)
	if err != nil {
		return fmt.Errorf("create river migrator: %w", err)
	}
	direction := rivermigrate.DirectionUp
	if target < 0 {
		direction = rivermigrate.DirectionDown
	}
	if _, err := migrator.Migrate(ctx, direction, &rivermigrate.MigrateOpts{TargetVersion: target}); err != nil {
		return fmt.Errorf("migrate river schema %s to %d: %w", direction, target, err)
	}
	return nil
}
