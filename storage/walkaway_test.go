package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/s3test"
	"github.com/productd/productd/storage"
)

// Walk stops at the first error of its function and returns it.
func TestWalkStopsAtTheFunctionsError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := s3test.New(t)
	prefix := storage.ProductPrefix(7)
	for _, name := range []string{"a.jpg", "b.jpg", "c.jpg"} {
		if _, err := s.Put(ctx, prefix+name, []byte("x"), "image/jpeg"); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	var seen []string
	err := s.Walk(ctx, prefix, func(o storage.Object) error {
		seen = append(seen, o.Key)
		return stop
	})
	if !errors.Is(err, stop) || len(seen) != 1 || seen[0] != prefix+"a.jpg" {
		t.Errorf("Walk returned %v after %v, want the function's error after the first key", err, seen)
	}
}

// Without MinIO, whether an object exists and the removal of a product's
// older images fail unavailable rather than answering wrongly.
func TestExistsAndOlderVersionsWithoutMinIO(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := s3test.Config(t)
	proxy := s3test.NewProxy(t)
	cfg.Endpoint, cfg.MaxRetries = proxy.Addr(), 1
	s, err := storage.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	if there, err := s.Exists(ctx, storage.ProductPrefix(7)+"a.jpg"); there || productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Errorf("Exists without MinIO: %v, %v; want unavailable", there, err)
	}
	if n, err := s.DeleteOlderVersions(ctx, 7, 3); n != 0 || productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Errorf("DeleteOlderVersions without MinIO: %d, %v; want unavailable", n, err)
	}
}
