// Package redistest gives each test its own corner of the shared Redis: a
// unique key prefix whose keys are deleted when the test ends, and a
// toxiproxy in front of Redis through which a test can cut the connection or
// slow it down without touching the real server that other tests use.
package redistest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// URL is the Redis tests use. TEST_REDIS_URL overrides it.
func URL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Addr is the host:port of URL.
func Addr(t testing.TB) string {
	t.Helper()
	opt, err := redis.ParseURL(URL())
	if err != nil {
		t.Fatalf("parse redis url %q: %v", URL(), err)
	}
	return opt.Addr
}

// prefixes numbers the prefixes of one test binary; the pid and the start
// time keep binaries that run at once apart.
var prefixes atomic.Int64

// Prefix returns a key prefix no other test uses and deletes every key that
// starts with it when t ends. The first call in a test process deletes the
// keys that dead test processes left behind (see reapOnce). A Redis that does not answer fails the test
// with the command that starts it.
func Prefix(t testing.TB) string {
	t.Helper()
	prefix := fmt.Sprintf("test:%d:%d:%d:", os.Getpid(), time.Now().UnixNano(), prefixes.Add(1))
	client := newAdminClient(t)
	reapOnce(t, client)
	t.Cleanup(func() {
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := deletePrefix(ctx, client, prefix); err != nil {
			t.Errorf("delete test keys %s*: %v", prefix, err)
		}
	})
	return prefix
}

// Client returns a plain client on URL that t closes at its end, for tests
// that look at or change keys behind the code under test.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	client := newAdminClient(t)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func newAdminClient(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(URL())
	if err != nil {
		t.Fatalf("parse redis url %q: %v", URL(), err)
	}
	client := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		t.Fatalf("redis at %s does not answer: %v\n(run `scripts/services up`)", opt.Addr, err)
	}
	return client
}

// deletePrefix removes the keys under prefix. SCAN's MATCH treats * ? [ ]
// and \ specially; the prefixes of this package contain none of them.
func deletePrefix(ctx context.Context, client *redis.Client, prefix string) error {
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			if err := client.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return client.Unlink(ctx, batch...).Err()
	}
	return nil
}

// WithAddr returns URL with its host:port replaced by addr, for pointing a
// client at a Proxy.
func WithAddr(t testing.TB, addr string) string {
	t.Helper()
	u, err := url.Parse(URL())
	if err != nil {
		t.Fatalf("parse redis url %q: %v", URL(), err)
	}
	if strings.HasPrefix(u.Scheme, "unix") {
		t.Fatalf("redistest: a proxy needs a TCP redis url, not %q", URL())
	}
	u.Host = addr
	return u.String()
}
