// Package db implements productd's storage in Postgres: the connection pool,
// the product queries behind productd.ProductService, and the migration
// runner.
package db

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/productd/productd"
)

// DefaultMaxConns is the pool size when the URL sets no pool_max_conns.
// pgx's own default (the number of CPUs, at least 4) starves productd all:
// River holds a connection for its listener, each relay batch holds one
// while the broker confirms, and the API needs its own beside them.
const DefaultMaxConns = 20

// Open connects a pool to databaseURL and checks that the server answers.
// Pool settings such as pool_max_conns can be given in the URL.
func Open(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if !strings.Contains(databaseURL, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, productd.Errorf(productd.EUNAVAILABLE, "database unreachable at %s:%d: %v", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
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

var errDatabaseUnavailable = &productd.Error{Code: productd.EUNAVAILABLE, Message: "The database is unavailable; retry later."}

// unavailable wraps err with what was being done, marking connection
// failures EUNAVAILABLE so that clients get a 503 they may retry rather than
// a 500.
func unavailable(doing string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) || isConnectError(err) {
		return fmt.Errorf("%s: %w: %w", doing, errDatabaseUnavailable, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
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
