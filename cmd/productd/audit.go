package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/productd/productd/audit"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/config"
	"github.com/productd/productd/db"
	"github.com/productd/productd/storage"
)

// errViolations makes `productd audit` exit non-zero when it found
// something, with the report already printed.
var errViolations = errors.New("the audit found violations")

// runAudit runs `productd audit [--json] [flags]` against the deployment
// the environment describes and prints the report on out.
func runAudit(ctx context.Context, cfg *config.Config, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("productd audit", flag.ContinueOnError)
	fs.SetOutput(errOut)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	stuckAfter := fs.Duration("stuck-after", audit.DefaultStuckAfter, "images pending or processing this long after the product's last change are stuck")
	pendingAfter := fs.Duration("pending-after", audit.DefaultPendingAfter, "outbox rows unpublished this long are late")
	grace := fs.Duration("grace", audit.DefaultObjectGrace, "objects younger than this are never orphans (they may be in flight)")
	maxFindings := fs.Int("max-findings", audit.DefaultMaxFindings, "findings listed per check (all are counted)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(errOut, "productd audit: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}

	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()
	store, err := storage.New(storageConfig(cfg))
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	client, err := cache.NewClient(cfg.RedisURL, 5*time.Second)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	defer client.Close()

	report, err := audit.Run(ctx, audit.Config{
		DB: pool, Store: store, Redis: client, CachePrefix: cfg.CachePrefix, AMQPURL: cfg.AMQPURL,
		StuckAfter: *stuckAfter, PendingAfter: *pendingAfter, ObjectGrace: *grace, MaxFindings: *maxFindings,
	})
	if err != nil {
		return err
	}
	return printReport(out, report, *asJSON, errViolations)
}

// report is what audit and load print.
type report interface {
	WriteText(io.Writer) error
	OK() bool
}

// printReport prints r as text, or as indented JSON, and returns notOK
// when r is not OK.
func printReport(out io.Writer, r report, asJSON bool, notOK error) error {
	var err error
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	} else {
		err = r.WriteText(out)
	}
	if err != nil {
		return fmt.Errorf("print the report: %w", err)
	}
	if !r.OK() {
		return notOK
	}
	return nil
}
