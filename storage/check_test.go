package storage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/productd/productd/internal/s3test"
	"github.com/productd/productd/storage"
)

func TestCheckSaysWhetherTheBucketAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := s3test.Config(t)
	s, err := storage.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("check of a bucket that exists: %v", err)
	}
	cfg.Bucket += "-missing"
	missing, err := storage.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := missing.Check(ctx); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("check of a missing bucket: %v", err)
	}
	cfg.Endpoint = "127.0.0.1:1"
	away, err := storage.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := away.Check(ctx); err == nil || !strings.Contains(err.Error(), "check bucket") {
		t.Errorf("check with storage away: %v", err)
	}
}
