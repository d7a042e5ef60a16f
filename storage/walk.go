package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/productd/productd"
)

// Object is an entry of a listing.
type Object struct {
	Key          string
	Size         int64
	LastModified time.Time
}

// Walk calls fn for every object under prefix, in the order of their keys
// (byte order, as S3 lists them), reading the listing page by page rather
// than all at once. It stops at the first error, fn's included.
func (s *Store) Walk(ctx context.Context, prefix string, fn func(Object) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing's goroutine when fn fails
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return classify(fmt.Sprintf("list objects under %s", prefix), obj.Err)
		}
		if err := fn(Object{Key: obj.Key, Size: obj.Size, LastModified: obj.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Exists reports whether an object is stored under key.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err == nil {
		return true, nil
	}
	err = classify(fmt.Sprintf("stat object %s", key), err)
	if productd.ErrorCode(err) == productd.ENOTFOUND {
		return false, nil
	}
	return false, err
}
