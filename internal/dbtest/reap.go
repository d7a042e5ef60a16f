package dbtest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// testDatabase matches the names New and NewEmpty give, which carry the pid
// of the test process.
var testDatabase = regexp.MustCompile(`^productd_test_(?:empty_)?([0-9]+)_[0-9]+$`)

var reaped sync.Once

// reapOnce drops, once per test process, the test databases of test
// processes that died without their clean-ups (killed, or timed out): those
// named after a process that no longer runs on this machine. A database
// whose process runs stays, whatever that process is.
func reapOnce(t testing.TB, admin *pgx.Conn) {
	t.Helper()
	reaped.Do(func() {
		if err := reap(context.Background(), admin); err != nil {
			t.Logf("drop the databases of dead test processes (a later run tries again): %v", err)
		}
	})
}

func reap(ctx context.Context, admin *pgx.Conn) error {
	rows, err := admin.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'productd\_test\_%'`)
	if err != nil {
		return fmt.Errorf("list test databases: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list test databases: %w", err)
	}
	var errs []error
	for _, name := range names {
		m := testDatabase.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		// Signal 0 checks that the process exists without touching it.
		if err != nil || pid <= 0 || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue
		}
		if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			errs = append(errs, fmt.Errorf("drop %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
