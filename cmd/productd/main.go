// Command productd runs the product catalogue: the HTTP API, the outbox
// relay and the image worker, together (the default, "all") or one role per
// process, and applies the database migrations.
//
// Usage:
//
//	productd [all|api|relay|worker]
//	productd migrate [up|down|status]
//
// Configuration comes from the environment (see package config); a .env file
// in the working directory is read when present.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
	"github.com/productd/productd/config"
	"github.com/productd/productd/db"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/telemetry"
)

const usage = `usage: productd [all|api|relay|worker]
       productd migrate [up|down|status]
       productd ops [--json] status|dead ...|parking replay|relay pause|resume|product ID

  all      run the API, the relay and the image worker in one process (default)
  api      serve the HTTP API on HTTP_ADDR
  relay    publish the outbox to RabbitMQ
  worker   compress product images
  migrate  apply (up), roll back one step (down) or list (status) migrations
  ops      read and steer the outbox, the relays and the image pipeline
           (productd ops help lists its commands)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// app holds what every role shares. Roles take it whole so that the wiring of
// each stays in its own file.
type app struct {
	cfg *config.Config
	log *logrus.Logger
	// pool is the Postgres pool of the process.
	pool *pgxpool.Pool
	// products is the product service every role uses: the database one,
	// wrapped by the cache when it is configured.
	products productd.ProductService
	// checks collects the readiness checks that /readyz runs.
	checks *api.Checks
	// originals stores images uploaded through the API; nil refuses uploads.
	originals api.OriginalStore
	// tel is the process's metrics registry and tracer provider; each role
	// registers its own families on it.
	tel *telemetry.Telemetry
}

// roles are the long-running parts of productd; "all" runs every one.
var roles = map[string]func(context.Context, *app) error{
	"api":    runAPI,
	"relay":  runRelay,
	"worker": runWorker,
}

// run is main without the process around it, so that tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "all"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	_, isRole := roles[cmd]
	if cmd == "ops" && (len(args) == 0 || args[0] == "help") {
		fmt.Fprint(stdout, opsUsage)
		return 0
	}
	if cmd != "all" && cmd != "migrate" && cmd != "ops" && !isRole {
		fmt.Fprintf(stderr, "productd: unknown command %q\n%s", cmd, usage)
		return 2
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(stderr, "productd: %v\n", err)
		return 2
	}
	log, err := logging.New(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		fmt.Fprintf(stderr, "productd: %v\n", err)
		return 2
	}
	switch cmd {
	case "migrate":
		err = migrate(ctx, cfg, args, stdout)
	case "ops":
		err = opsCommand(ctx, cfg, log, args, stdout)
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "productd ops: %s\n%s", strings.Join(args, " "), opsUsage)
			return 2
		}
	default:
		err = serve(ctx, cfg, log, cmd)
	}
	if err != nil {
		log.WithError(err).WithField("command", cmd).Error("productd stopped with an error")
		return 1
	}
	return 0
}

// serve runs one role, or all of them, until ctx is cancelled or one fails.
func serve(ctx context.Context, cfg *config.Config, log *logrus.Logger, cmd string) error {
	gin.SetMode(gin.ReleaseMode)
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()

	tel, err := newTelemetry(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer shutdownTelemetry(ctx, cfg, log, tel)

	a := &app{cfg: cfg, log: log, pool: pool, products: db.NewProductService(pool), checks: &api.Checks{}, tel: tel}
	a.checks.Add("postgres", func(ctx context.Context) error { return pool.Ping(ctx) })
	if err := setupStorage(ctx, a); err != nil {
		return err
	}
	if err := setupCache(ctx, a); err != nil {
		return err
	}

	selected := []string{cmd}
	if cmd == "all" {
		selected = []string{"api", "relay", "worker"}
	}
	log.WithField("roles", selected).Info("productd starting")
	g, ctx := errgroup.WithContext(ctx)
	for _, name := range selected {
		runRole := roles[name]
		g.Go(func() error {
			if err := runRole(ctx, a); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	err = g.Wait()
	// The cache leaves the registry of in-process tiers, so that writers in
	// other processes stop waiting for this one's acknowledgements.
	if closer, ok := a.products.(io.Closer); ok {
		if cerr := closer.Close(); cerr != nil {
			log.WithError(cerr).Warn("close product service")
		}
	}
	log.Info("productd stopped")
	return err
}
