package main

import (
	"context"
	"fmt"
	"io"

	"github.com/productd/productd/config"
	"github.com/productd/productd/db"
)

// migrate runs `productd migrate up|down|status`.
func migrate(ctx context.Context, cfg *config.Config, args []string, out io.Writer) error {
	direction := "up"
	if len(args) > 0 {
		direction = args[0]
	}
	m, err := db.NewMigrator(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer m.Close()
	switch direction {
	case "up":
		results, err := m.Up(ctx)
		for _, r := range results {
			fmt.Fprintf(out, "applied %05d %s (%s)\n", r.Source.Version, db.SourceName(r.Source), r.Duration)
		}
		if err == nil && len(results) == 0 {
			fmt.Fprintln(out, "database is up to date")
		}
		return err
	case "down":
		r, err := m.Down(ctx)
		if r != nil {
			fmt.Fprintf(out, "rolled back %05d %s (%s)\n", r.Source.Version, db.SourceName(r.Source), r.Duration)
		}
		return err
	case "status":
		return m.Status(ctx, out)
	}
	return fmt.Errorf("unknown migrate direction %q: want up, down or status", direction)
}
