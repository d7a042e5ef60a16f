package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/productd/productd/internal/failtest"
)

// deadPID returns the pid of a process that has ended.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// The keys of a test process that died go on the next reap; those of a
// process that runs, and keys not named after a process, stay.
func TestReapDeletesOnlyTheKeysOfDeadProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := Client(t)
	dead := fmt.Sprintf("test:%d:1:1:", deadPID(t))
	alive := Prefix(t)
	notPID := fmt.Sprintf("test:x%d:", os.Getpid())
	t.Cleanup(func() { _ = deletePrefix(context.Background(), client, notPID) })
	for _, key := range []string{dead + "a", dead + "b", alive + "a", notPID + "a"} {
		if err := client.Set(ctx, key, "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := reap(ctx, client); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]int64{dead + "a": 0, dead + "b": 0, alive + "a": 1, notPID + "a": 1} {
		if n, err := client.Exists(ctx, key).Result(); err != nil || n != want {
			t.Errorf("%s exists %d times after the reap (%v), want %d", key, n, err, want)
		}
	}
}

// A prefix's keys go with its test, however many there are.
func TestPrefixKeysGoWithTheirTest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := Client(t)
	var prefix string
	t.Run("writes", func(t *testing.T) {
		prefix = Prefix(t)
		pipe := client.Pipeline()
		for i := range 2500 {
			pipe.Set(ctx, fmt.Sprintf("%s%d", prefix, i), "1", 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	})
	keys, _, err := client.Scan(ctx, 0, prefix+"*", 10000).Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("%d keys under %s after its test (%v), want none", len(keys), prefix, err)
	}
}

// A Redis that does not answer, or a URL that cannot be used, fails the
// test with what to do about it.
func TestUnusableRedisSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		url, want string
		fn        func(testing.TB)
	}{
		{"redis://127.0.0.1:1/0", "run `scripts/services up`", func(tb testing.TB) { Client(tb) }},
		{"redis://%zz", "parse redis url", func(tb testing.TB) { Addr(tb) }},
		{"redis://%zz", "parse redis url", func(tb testing.TB) { Client(tb) }},
		{"redis://%zz", "parse redis url", func(tb testing.TB) { WithAddr(tb, "127.0.0.1:2") }},
		{"unix:///run/redis.sock", "needs a TCP redis url", func(tb testing.TB) { WithAddr(tb, "127.0.0.1:2") }},
	} {
		t.Setenv("TEST_REDIS_URL", tc.url)
		if msg := failtest.Failures(t, tc.fn); !strings.Contains(msg, tc.want) {
			t.Errorf("with TEST_REDIS_URL=%s: failed with %q, want %q", tc.url, msg, tc.want)
		}
	}
}
