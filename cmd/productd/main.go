// Command productd runs the product catalogue: the HTTP API, the outbox
// relay and the image worker, together (the default, "all") or one role per
// process, and applies the database migrations.
//
// Usage:
//
//	productd [all|api|relay|worker]
//	productd migrate [up|down|status]
//	productd audit [--json] [flags]
//	productd load [flags]
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
	"slices"
	"strings"
	"syscall"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
	"github.com/productd/productd/chores"
	"github.com/productd/productd/config"
	"github.com/productd/productd/db"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/relay"
	"github.com/productd/productd/telemetry"
	"github.com/productd/productd/uploads"
)

const usage = `usage: productd [all|api|relay|worker]
       productd migrate [up|down|status]
       productd ops [--json] status|dead ...|parking replay|relay pause|resume|product ID
       productd audit [--json] [flags]
       productd load [flags]

  all      run the API, the relay and the image worker in one process (default)
  api      serve the HTTP API on HTTP_ADDR
  relay    publish the outbox to RabbitMQ
  worker   compress product images
  migrate  apply (up), roll back one step (down) or list (status) migrations
  ops      read and steer the outbox, the relays and the image pipeline
           (productd ops help lists its commands)
  audit    check the deployment's invariants; exit status 1 when one is broken
           (productd audit -h lists the flags)
  load     create products through the API and follow each to its end, with a
           progress line and a latency report (productd load -h)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// errLoadFailed makes `productd load` exit with status 1, its report
// printed: a product was refused, never ended, or ended otherwise than it
// must.
var errLoadFailed = errors.New("products were lost or ended wrongly")

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
	// originals stores images uploaded through the API and records who
	// owns them.
	originals *uploads.Store
	// tel is the process's metrics registry and tracer provider; each role
	// registers its own families on it.
	tel *telemetry.Telemetry
	// chores holds the process's River client and every chore registered
	// with it; the relay role runs it (see setupChores).
	chores *chores.Scheduler
	// relay publishes the outbox; set when the process has the relay role.
	relay *relay.Relay
	// servesAPI is set when the process has the api role: see need.
	servesAPI bool
}

// need registers check for a dependency the process's roles use. In a
// process that serves the API, RabbitMQ and the storage only degrade it:
// its creates go to the outbox whatever the broker does and only uploads
// need the storage, so taking the process out of its load balancer would
// turn a broker or storage outage into an API outage. Postgres is always
// required, and elsewhere every dependency is.
func (a *app) need(name string, check api.Check) {
	if a.servesAPI && name != "postgres" {
		a.checks.AddOptional(name, check)
		return
	}
	a.checks.Add(name, check)
}

// roles are the parts of productd a process can run; "all" runs every one.
// Every process serves HTTP (/healthz, /readyz; see serveHTTP); the api role
// is routes on that server (see apiRoutes) and has nothing else to run, the
// others run beside it until the process stops.
var roles = map[string]func(context.Context, *app) error{
	"api":    nil,
	"relay":  runRelay,
	"worker": runWorker,
}

// run is main without the process around it, so that tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, os.LookupEnv, stdout, stderr)
}

// runEnv is run with the environment read through lookup (which falls back
// to os.LookupEnv, where the .env file goes), so that a test can run several
// processes side by side, each with settings of its own.
func runEnv(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
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
	if cmd != "all" && cmd != "migrate" && cmd != "ops" && cmd != "audit" && cmd != "load" && !isRole {
		fmt.Fprintf(stderr, "productd: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if cmd == "load" {
		// A client of the API: none of the server's settings apply.
		return exitCode(runLoad(ctx, args, stdout, stderr), nil, cmd, stderr)
	}
	cfg, err := config.LoadWith(lookup)
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
	case "audit":
		err = runAudit(ctx, cfg, args, stdout, stderr)
	case "ops":
		err = opsCommand(ctx, cfg, log, args, stdout)
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "productd ops: %s\n%s", strings.Join(args, " "), opsUsage)
			return 2
		}
	default:
		err = serve(ctx, cfg, log, cmd)
	}
	return exitCode(err, log, cmd, stderr)
}

// exitCode is the exit status of a command that returned err: 2 for bad
// usage, 1 for a failure (logged, or written to stderr without a logger,
// unless the command reported it itself), 0 for success.
func exitCode(err error, log *logrus.Logger, cmd string, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errViolations), errors.Is(err, errLoadFailed):
		return 1
	case log == nil:
		fmt.Fprintf(stderr, "productd %s: %v\n", cmd, err)
		return 1
	}
	log.WithError(err).WithField("command", cmd).Error("productd stopped with an error")
	return 1
}

// serve runs one role, or all of them, until ctx is cancelled or one fails.
func serve(ctx context.Context, cfg *config.Config, log *logrus.Logger, cmd string) error {
	gin.SetMode(gin.ReleaseMode)
	pool, err := db.OpenConfig(ctx, db.Config{URL: cfg.DatabaseURL, StatementTimeout: cfg.DBStatementTimeout})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()

	selected := []string{cmd}
	if cmd == "all" {
		selected = []string{"api", "relay", "worker"}
	}
	has := func(role string) bool { return slices.Contains(selected, role) }

	tel, err := newTelemetry(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer shutdownTelemetry(ctx, cfg, log, tel)

	// Readiness is what the roles need: Postgres always, the storage for
	// uploads (api) and compressed images (worker), RabbitMQ for relay and
	// worker, each registered by the part that uses it (see need); Redis
	// only degrades.
	a := &app{cfg: cfg, log: log, pool: pool, checks: &api.Checks{}, tel: tel, servesAPI: has("api")}
	a.need("postgres", func(ctx context.Context) error { return pool.Ping(ctx) })
	if has("relay") {
		closeRelay, err := setupRelay(a)
		if err != nil {
			return err
		}
		defer closeRelay()
	}
	// The writes wake the relays after their commits; the notifier of a
	// process without a relay outlives the roles, for the requests that
	// finish while the API drains.
	wakeCtx, stopWaking := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWaking()
	a.products = db.NewProductServiceConfig(pool, db.ServiceConfig{Wake: wakeRelays(wakeCtx, a, has("api"))})
	if err := setupStorage(ctx, a, has("api") || has("worker")); err != nil {
		return err
	}
	// Only a process that serves reads keeps products in memory: every
	// in-process tier is one more that each write waits for.
	if err := setupCache(ctx, a, a.cfg.CacheLocal && has("api")); err != nil {
		return err
	}
	if has("worker") && !a.servesAPI {
		// runWorker connects its broker once the roles start.
		a.checks.Expect("rabbitmq")
	}
	if err := setupChores(a); err != nil {
		return err
	}

	log.WithField("roles", selected).Info("productd starting")
	g, ctx := errgroup.WithContext(ctx)
	srv, closeRoutes, err := newHTTPServer(ctx, a, selected)
	if err != nil {
		return err
	}
	defer closeRoutes()
	g.Go(func() error {
		if err := serveHTTP(ctx, a, srv); err != nil {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	for _, name := range selected {
		runRole := roles[name]
		if runRole == nil {
			continue
		}
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
