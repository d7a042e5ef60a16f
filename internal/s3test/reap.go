package s3test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// bucketPrefix starts the name of every test bucket, followed by the pid of
// the test process that made it.
const bucketPrefix = "productd-test-"

var reaped sync.Once

// reapOnce removes, once per test process, the buckets of test processes
// that died without their clean-ups (killed, or timed out): those named after
// a process that no longer runs on this machine. A bucket whose process runs
// stays, whatever that process is.
func reapOnce(t testing.TB, client *minio.Client) {
	t.Helper()
	reaped.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := reap(ctx, client); err != nil {
			t.Logf("remove the buckets of dead test processes (a later run tries again): %v", err)
		}
	})
}

func reap(ctx context.Context, client *minio.Client) error {
	buckets, err := client.ListBuckets(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range buckets {
		pidText, _, ok := strings.Cut(strings.TrimPrefix(b.Name, bucketPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || !strings.HasPrefix(b.Name, bucketPrefix) || err != nil || pid <= 0 {
			continue
		}
		// Signal 0 checks that the process exists without touching it.
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			errs = append(errs, removeBucket(ctx, client, b.Name))
		}
	}
	return errors.Join(errs...)
}
