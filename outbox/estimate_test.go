package outbox_test

import (
	"context"
	"strings"
	"testing"

	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/outbox"
)

// A query Postgres cannot plan fails the estimate, saying so.
func TestEstimateOfAQueryPostgresCannotPlan(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	if _, err := outbox.Estimate(context.Background(), pool, `SELECT 1 FROM no_such_table`); err == nil || !strings.HasPrefix(err.Error(), "estimate rows: ") {
		t.Errorf("an estimate of a query on a missing table: %v, want estimate rows", err)
	}
}
