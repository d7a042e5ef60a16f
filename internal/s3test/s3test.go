// Package s3test gives each test a bucket of its own on the real MinIO, so
// that the packages' tests can run in parallel against one server. The bucket
// and everything in it go away when the test ends.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/productd/productd/internal/proxytest"
	"github.com/productd/productd/storage"
)

// Endpoint is the S3 API the tests use: TEST_S3_ENDPOINT, default
// 127.0.0.1:9000 with the credentials minioadmin/minioadmin (override with
// TEST_S3_ACCESS_KEY and TEST_S3_SECRET_KEY).
func Endpoint() string { return env("TEST_S3_ENDPOINT", "127.0.0.1:9000") }

// Config creates a fresh bucket for t, removes it with its objects when t
// ends, and returns a storage configuration for it. Tests that put a proxy
// between the store and MinIO change Endpoint and keep the rest. A MinIO that
// does not answer fails the test with the command that starts it.
func Config(t testing.TB) storage.Config {
	t.Helper()
	cfg := storage.Config{
		Endpoint:  Endpoint(),
		AccessKey: env("TEST_S3_ACCESS_KEY", "minioadmin"),
		SecretKey: env("TEST_S3_SECRET_KEY", "minioadmin"),
		Bucket:    fmt.Sprintf("%s%d-%s", bucketPrefix, os.Getpid(), randomHex(t, 8)),
	}
	cfg.PublicURL = "http://" + cfg.Endpoint + "/" + cfg.Bucket

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := storage.Open(ctx, cfg); err != nil {
		t.Fatalf("create test bucket on MinIO at %s: %v\n(is MinIO running? run `scripts/services up`)", cfg.Endpoint, err)
	}
	client := adminClient(t, cfg)
	reapOnce(t, client)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := removeBucket(ctx, client, cfg.Bucket); err != nil {
			t.Errorf("remove test bucket: %v", err)
		}
	})
	return cfg
}

// New returns a store on a fresh bucket that goes away with t.
func New(t testing.TB) *storage.Store {
	t.Helper()
	s, err := storage.New(Config(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// adminClient is a plain client on the test MinIO, for removing buckets
// whatever objects they hold.
func adminClient(t testing.TB, cfg storage.Config) *minio.Client {
	t.Helper()
	client, err := minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")})
	if err != nil {
		t.Fatalf("connect to MinIO at %s: %v", cfg.Endpoint, err)
	}
	return client
}

// removeBucket removes bucket with every object in it, under whatever key.
func removeBucket(ctx context.Context, client *minio.Client, bucket string) error {
	objects := client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true})
	for res := range client.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
		if res.Err != nil {
			return fmt.Errorf("empty bucket %s: %s: %w", bucket, res.ObjectName, res.Err)
		}
	}
	if err := client.RemoveBucket(ctx, bucket); err != nil {
		return fmt.Errorf("remove bucket %s: %w", bucket, err)
	}
	return nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Status returns the status of an anonymous GET of url, as a browser
// would send it: 200 for an object anyone may read, 403 or 404 for one that
// is gone.
func Status(t testing.TB, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// NewProxy starts an in-process toxiproxy in front of the test MinIO; it
// stops when t ends. Point a store's Endpoint at its Addr; Cut takes MinIO
// away from that store (open connections are closed, new ones refused) and
// Restore brings it back on the same address.
func NewProxy(t testing.TB) *proxytest.Proxy {
	t.Helper()
	return proxytest.New(t, "minio", Endpoint())
}
