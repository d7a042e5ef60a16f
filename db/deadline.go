package db

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// codeQueryCanceled is the SQLSTATE of a statement cancelled by a cancel
// request or by statement_timeout.
const codeQueryCanceled = "57014"

// timedOut reports whether err ended a statement or a wait for a connection
// at a deadline: the caller's, or the server's statement_timeout.
func timedOut(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == codeQueryCanceled
	}
	return errors.Is(err, context.DeadlineExceeded)
}
