package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/s3test"
	"github.com/productd/productd/storage"
)

func TestPutGetAndPublicURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := s3test.New(t)
	sum := sha256.Sum256([]byte("original"))
	key := storage.CompressedKey(42, 3, 1, sum[:], "jpg")
	if want := "products/42/3/1-" + hex.EncodeToString(sum[:8]) + ".jpg"; key != want {
		t.Fatalf("CompressedKey = %q, want %q", key, want)
	}

	url, err := s.Put(ctx, key, []byte("jpeg bytes"), "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s.KeyFromURL(url); !ok || got != key {
		t.Fatalf("KeyFromURL(%q) = %q, %v; want %q", url, got, ok, key)
	}
	data, err := s.Get(ctx, key, 100)
	if err != nil || string(data) != "jpeg bytes" {
		t.Fatalf("Get = %q, %v", data, err)
	}

	// Anyone may read the public URL, with the headers that let CDNs keep it.
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "jpeg bytes" {
		t.Fatalf("anonymous GET %s: %d %q", url, resp.StatusCode, body)
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "image/jpeg" || cc != storage.ImmutableCacheControl {
		t.Fatalf("anonymous GET headers: Content-Type %q, Cache-Control %q", ct, cc)
	}
}

func TestAnonymousClientsCannotList(t *testing.T) {
	t.Parallel()
	cfg := s3test.Config(t)
	resp, err := http.Get(cfg.PublicURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("anonymous list of the bucket: %d, want 403", resp.StatusCode)
	}
}

func TestGetErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := s3test.New(t)
	if _, err := s.Get(ctx, "originals/missing.jpg", 100); productd.ErrorCode(err) != productd.ENOTFOUND {
		t.Fatalf("Get of a missing object: %v, want ENOTFOUND", err)
	}
	if _, err := s.Put(ctx, "originals/big.png", make([]byte, 101), "image/png"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "originals/big.png", 100); productd.ErrorCode(err) != productd.ETOOLARGE {
		t.Fatalf("Get over the limit: %v, want ETOOLARGE", err)
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := s3test.Config(t)
	cfg.Endpoint = "127.0.0.1:1" // nothing listens on port 1
	cfg.MaxRetries = 1
	s, err := storage.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "originals/x.jpg", []byte("x"), "image/jpeg"); productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Fatalf("Put with MinIO unreachable: %v, want EUNAVAILABLE", err)
	}
	if _, err := s.Get(ctx, "originals/x.jpg", 10); productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Fatalf("Get with MinIO unreachable: %v, want EUNAVAILABLE", err)
	}
	if err := s.DeleteProduct(ctx, 1); productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Fatalf("DeleteProduct with MinIO unreachable: %v, want EUNAVAILABLE", err)
	}
	if _, err := storage.Open(ctx, cfg); productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Fatalf("Open with MinIO unreachable: %v, want EUNAVAILABLE", err)
	}
}

func TestDeleteProduct(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := s3test.New(t)
	put := func(keys ...string) {
		t.Helper()
		for _, key := range keys {
			if _, err := s.Put(ctx, key, []byte(key), "image/jpeg"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Product 7 owns one upload and has compressed images of two images
	// versions, one from before versions were in keys. Product 8's objects
	// and an upload product 7 merely lists are not its own.
	put("originals/7.jpg", "products/7/0-aaaaaaaaaaaaaaaa.jpg", "products/7/2/0-bbbbbbbbbbbbbbbb.jpg",
		"products/8/1/0-cccccccccccccccc.jpg", "originals/8.jpg", "products/70/1/0-dddddddddddddddd.jpg")

	if err := s.DeleteProduct(ctx, 7, "originals/7.jpg"); err != nil {
		t.Fatal(err)
	}
	// A redelivered delete event deletes nothing more and does not fail.
	if err := s.DeleteProduct(ctx, 7, "originals/7.jpg"); err != nil {
		t.Fatalf("second DeleteProduct: %v", err)
	}
	if left, want := all(t, s), []string{"originals/8.jpg", "products/70/1/0-dddddddddddddddd.jpg", "products/8/1/0-cccccccccccccccc.jpg"}; !slices.Equal(left, want) {
		t.Fatalf("left after delete: %v, want %v", left, want)
	}
}

// Only compressed images of earlier images versions go.
func TestDeleteOlderVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := s3test.New(t)
	for _, key := range []string{"products/5/0-aaaaaaaaaaaaaaaa.jpg", "products/5/2/0-bbbbbbbbbbbbbbbb.jpg", "products/5/3/0-cccccccccccccccc.jpg",
		"products/5/4/1-dddddddddddddddd.jpg", "products/6/1/0-eeeeeeeeeeeeeeee.jpg",
		// A folder that is no version was never written by this version
		// of productd: it counts as the oldest.
		"products/5/tmp/0-ffffffffffffffff.jpg"} {
		if _, err := s.Put(ctx, key, []byte(key), "image/jpeg"); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteOlderVersions(ctx, 5, 3)
	if err != nil || n != 3 {
		t.Fatalf("DeleteOlderVersions = %d, %v; want 3 removed", n, err)
	}
	if left, want := all(t, s), []string{"products/5/3/0-cccccccccccccccc.jpg", "products/5/4/1-dddddddddddddddd.jpg", "products/6/1/0-eeeeeeeeeeeeeeee.jpg"}; !slices.Equal(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
}

// all lists every key of the store, sorted.
func all(t *testing.T, s *storage.Store) []string {
	t.Helper()
	var keys []string
	for _, p := range []string{storage.PrefixOriginals, storage.PrefixProducts} {
		k, err := s.List(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k...)
	}
	slices.Sort(keys)
	return keys
}

func TestDeleteRefusesPrivateKeys(t *testing.T) {
	t.Parallel()
	s, err := storage.New(storage.Config{Endpoint: "127.0.0.1:9000", Bucket: "b", PublicURL: "http://x/b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(context.Background(), "products/1/a.jpg", "secrets/db.dump"); err == nil {
		t.Fatal("Delete of a key outside the public prefixes succeeded")
	}
}

func TestKeyFromURL(t *testing.T) {
	t.Parallel()
	s, err := storage.New(storage.Config{Endpoint: "127.0.0.1:9000", Bucket: "b", PublicURL: "https://cdn.example.com/b/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url, key string
		ok       bool
	}{
		{"https://cdn.example.com/b/originals/x%20y.jpg", "originals/x y.jpg", true},
		{"https://cdn.example.com/b/products/1/0-ab.jpg", "products/1/0-ab.jpg", true},
		{"https://cdn.example.com/b/private/x.jpg", "", false},
		{"https://cdn.example.com/b/products/../private/x.jpg", "", false},
		{"https://cdn.example.com/b/originals/", "", false},
		{"https://cdn.example.com/b/originals/x.jpg?v=1", "", false},
		{"https://cdn.example.com/other/originals/x.jpg", "", false},
		{"https://example.com/b/originals/x.jpg", "", false},
	} {
		key, ok := s.KeyFromURL(tc.url)
		if key != tc.key || ok != tc.ok {
			t.Errorf("KeyFromURL(%q) = %q, %v; want %q, %v", tc.url, key, ok, tc.key, tc.ok)
		}
	}
	if got := s.URL("originals/x y.jpg"); got != "https://cdn.example.com/b/originals/x%20y.jpg" {
		t.Errorf("URL = %q", got)
	}
}

func TestNewOriginalKey(t *testing.T) {
	t.Parallel()
	a, err := storage.NewOriginalKey("image/png")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := storage.NewOriginalKey("image/png")
	if a == b || !strings.HasPrefix(a, storage.PrefixOriginals) || !strings.HasSuffix(a, ".png") {
		t.Fatalf("NewOriginalKey gave %q and %q", a, b)
	}
	if _, err := storage.NewOriginalKey("text/plain"); productd.ErrorCode(err) != productd.EUNSUPPORTED {
		t.Fatalf("a key for text: %v, want EUNSUPPORTED", err)
	}
}

func TestNewNeedsTheAddress(t *testing.T) {
	t.Parallel()
	if _, err := storage.New(storage.Config{Endpoint: "127.0.0.1:9000"}); err == nil {
		t.Fatal("New without a bucket succeeded")
	}
}

// PutStream stores what it reads, in one piece, and anyone may read it back.
func TestPutStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := s3test.New(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	key, err := storage.NewOriginalKey("image/png")
	if err != nil {
		t.Fatal(err)
	}
	url, err := s.PutStream(ctx, key, iotest.OneByteReader(bytes.NewReader(data)), int64(len(data)), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("GET %s: %d, %d bytes, %s", url, resp.StatusCode, len(got), resp.Header.Get("Content-Type"))
	}
	// A reader that ends early stores nothing.
	if _, err := s.PutStream(ctx, key+".short", bytes.NewReader(data[:10]), int64(len(data)), "image/png"); err == nil {
		t.Fatal("a short stream was stored")
	}
}

func TestEnsureBucketIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := s3test.Config(t)
	s, err := storage.Open(ctx, cfg) // the bucket exists already
	if err != nil {
		t.Fatal(err)
	}
	if s.Bucket() != cfg.Bucket {
		t.Fatalf("Bucket() = %q", s.Bucket())
	}
	if err := s.Delete(ctx); err != nil {
		t.Fatalf("deleting nothing: %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Get(canceled, "originals/x.jpg", 10); !errors.Is(err, context.Canceled) || productd.ErrorCode(err) == productd.EUNAVAILABLE {
		t.Fatalf("Get with a canceled context: %v, want the cancellation itself", err)
	}
}
