// Package db implements productd's storage in Postgres: the connection pool,
// the product queries behind productd.ProductService, and the migration
// runner.
//
// # Deadlines
//
// A caller bounds its database work with its context's deadline: waiting
// for a pooled connection and every statement count against it. When the
// context ends during a statement, pgx abandons the connection and sends
// Postgres a cancel request, so the statement stops on the server too (one
// scanning a table or waiting on a lock would otherwise run on after its
// client gave up). Behind that, every connection has a statement_timeout
// (Config.StatementTimeout) for the statement whose caller set no deadline.
// Work cut short by either is an EUNAVAILABLE error.
package db

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/settings"
)

// Defaults of Config.
const (
	// DefaultMaxConns is the pool size when the URL sets no
	// pool_max_conns. pgx's own default (the number of CPUs, at least 4)
	// starves productd all: River holds a connection for its listener, each
	// relay batch holds one while the broker confirms, and the API needs its
	// own beside them.
	DefaultMaxConns = 20

	// DefaultStatementTimeout is the statement_timeout of the pool's
	// connections: far above any statement productd runs, it only ends one
	// that nothing else would.
	DefaultStatementTimeout = 30 * time.Second
)

// Config is how Open connects the pool.
type Config struct {
	// URL is a postgres:// URL or a libpq keyword/value string. Pool
	// settings such as pool_max_conns can be given in it.
	URL string

	// StatementTimeout is the statement_timeout Postgres enforces on every
	// connection of the pool, the bound on a statement that no deadline of
	// its caller cancels (see the package documentation). A
	// statement_timeout given in URL wins. Zero means
	// DefaultStatementTimeout (30 s).
	StatementTimeout time.Duration
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.StatementTimeout = cmp.Or(c.StatementTimeout, DefaultStatementTimeout)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults. Postgres itself would refuse a negative
// statement_timeout, but only once the first connection is made.
func (c Config) validate() error {
	return settings.NonNegative("db", settings.F("StatementTimeout", c.StatementTimeout))
}

// Open connects a pool to databaseURL with the defaults of Config and
// checks that the server answers.
func Open(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	return OpenConfig(ctx, Config{URL: databaseURL})
}

// OpenConfig connects a pool as cfg says and checks that the server
// answers.
func OpenConfig(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	poolCfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if !strings.Contains(cfg.URL, "pool_max_conns") {
		poolCfg.MaxConns = DefaultMaxConns
	}
	params := poolCfg.ConnConfig.RuntimeParams
	if _, ok := params["statement_timeout"]; !ok {
		params["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("create database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, productd.Errorf(productd.EUNAVAILABLE, "database unreachable at %s:%d: %v", poolCfg.ConnConfig.Host, poolCfg.ConnConfig.Port, err)
	}
	return pool, nil
}

// InTx runs fn inside a transaction on pool and commits when fn returns nil.
// Any error rolls the transaction back.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return unavailable("begin transaction", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return unavailable("commit transaction", err)
	}
	return nil
}

var (
	errDatabaseUnavailable = &productd.Error{Code: productd.EUNAVAILABLE, Message: "The database is unavailable; retry later."}
	errDatabaseTimeout     = &productd.Error{Code: productd.EUNAVAILABLE, Message: "The database did not answer in time; retry later."}
)

// unavailable wraps err with what was being done, marking connection
// failures and statements cut short by a deadline EUNAVAILABLE, so that
// clients get a 503 they may retry rather than a 500.
func unavailable(doing string, err error) error {
	if timedOut(err) {
		return fmt.Errorf("%s: %w: %w", doing, errDatabaseTimeout, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !serverAway(pgErr) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	if pgErr != nil || pgconn.SafeToRetry(err) || pgconn.Timeout(err) || isConnectError(err) {
		return fmt.Errorf("%s: %w: %w", doing, errDatabaseUnavailable, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// serverAway reports the errors of a server that ends or refuses sessions
// while it shuts down, crashes or starts up (admin_shutdown 57P01,
// crash_shutdown 57P02, cannot_connect_now 57P03) and connection exceptions
// (class 08): the statement is not at fault and may succeed once the server
// is back, as after every restart.
func serverAway(pgErr *pgconn.PgError) bool {
	switch pgErr.Code {
	case "57P01", "57P02", "57P03":
		return true
	}
	return strings.HasPrefix(pgErr.Code, "08")
}

// isConnectError reports failures to reach the server or to get a
// connection from the pool, as opposed to errors in a statement.
func isConnectError(err error) bool {
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, puddle.ErrClosedPool) || errors.Is(err, io.ErrUnexpectedEOF)
}

func parseConnConfig(databaseURL string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	return cfg, nil
}
