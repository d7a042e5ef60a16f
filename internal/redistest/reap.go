package redistest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var reaped sync.Once

// reapOnce deletes, once per test process, the keys of test processes that
// died without their clean-ups (killed, or timed out): those under a prefix
// named after a process that no longer runs on this machine. Keys whose
// process runs stay, whatever that process is.
func reapOnce(t testing.TB, client *redis.Client) {
	t.Helper()
	reaped.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := reap(ctx, client); err != nil {
			t.Logf("delete the keys of dead test processes (a later run tries again): %v", err)
		}
	})
}

func reap(ctx context.Context, client *redis.Client) error {
	dead := map[int]bool{}
	iter := client.Scan(ctx, 0, "test:*", 1000).Iterator()
	for iter.Next(ctx) {
		// test:<pid>:<start>:<n>:...
		pidText, _, _ := strings.Cut(strings.TrimPrefix(iter.Val(), "test:"), ":")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 {
			continue
		}
		if _, seen := dead[pid]; !seen {
			// Signal 0 checks that the process exists without touching it.
			dead[pid] = errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan test keys: %w", err)
	}
	var errs []error
	for pid, isDead := range dead {
		if isDead {
			errs = append(errs, deletePrefix(ctx, client, fmt.Sprintf("test:%d:", pid)))
		}
	}
	return errors.Join(errs...)
}
