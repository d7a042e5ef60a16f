package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"

	"github.com/productd/productd"
)

// ImmutableCacheControl is the Cache-Control of every object the store
// writes. No key is ever rewritten with other content (compressed keys carry
// the original's hash, originals a unique id), so clients and CDNs may keep
// an object for a year without asking again.
const ImmutableCacheControl = "public, max-age=31536000, immutable"

// Put stores data under key with the given content type and returns the
// object's public URL.
func (s *Store) Put(ctx context.Context, key string, data []byte, contentType string) (string, error) {
	return s.PutStream(ctx, key, bytes.NewReader(data), int64(len(data)), contentType)
}

// PutStream stores size bytes read from r under key and returns the
// object's public URL. The bytes go to the server as they are read, in one
// request: memory stays small whatever the size.
func (s *Store) PutStream(ctx context.Context, key string, r io.Reader, size int64, contentType string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.client.PutObject(ctx, s.bucket, key, r, size, minio.PutObjectOptions{
		ContentType:      contentType,
		CacheControl:     ImmutableCacheControl,
		DisableMultipart: true,
	})
	if err != nil {
		return "", classify(fmt.Sprintf("put object %s", key), err)
	}
	return s.URL(key), nil
}

// Get reads the object under key. An object larger than maxBytes is an
// ETOOLARGE error and is not read to its end; a missing one is ENOTFOUND.
func (s *Store) Get(ctx context.Context, key string, maxBytes int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, classify(fmt.Sprintf("get object %s", key), err)
	}
	defer obj.Close()
	info, err := obj.Stat()
	if err != nil {
		return nil, classify(fmt.Sprintf("get object %s", key), err)
	}
	if info.Size > maxBytes {
		return nil, productd.Errorf(productd.ETOOLARGE, "the stored file is %d bytes; the limit is %d", info.Size, maxBytes)
	}
	data := make([]byte, info.Size)
	if _, err := io.ReadFull(obj, data); err != nil {
		return nil, classify(fmt.Sprintf("read object %s", key), err)
	}
	return data, nil
}

// Delete removes the objects under keys. Keys outside the public prefixes
// are refused, and a missing object is not an error, so a redelivered delete
// event succeeds.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		if !isPublicKey(k) {
			return fmt.Errorf("delete object %s: outside the public prefixes", k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	objects := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		objects <- minio.ObjectInfo{Key: k}
	}
	close(objects)
	var errs []error
	for e := range s.client.RemoveObjects(ctx, s.bucket, objects, minio.RemoveObjectsOptions{}) {
		errs = append(errs, classify(fmt.Sprintf("delete object %s", e.ObjectName), e.Err))
	}
	return errors.Join(errs...)
}

// DeleteProduct removes every object of a deleted product: all under its
// prefix, compressed images of earlier images included, and owned, the
// keys of the uploads it owned. A redelivered delete finds nothing more to
// delete and succeeds.
func (s *Store) DeleteProduct(ctx context.Context, productID int64, owned ...string) error {
	keys, err := s.List(ctx, ProductPrefix(productID))
	if err != nil {
		return err
	}
	return s.Delete(ctx, append(keys, owned...)...)
}

// DeleteOlderVersions removes the product's compressed images of images
// versions before version, and returns how many it removed. Nothing of
// version or later is touched, so a run on newer images that stores its
// objects meanwhile keeps them.
func (s *Store) DeleteOlderVersions(ctx context.Context, productID, version int64) (int, error) {
	prefix := ProductPrefix(productID)
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	old := keys[:0]
	for _, k := range keys {
		if keyVersion(prefix, k) < version {
			old = append(old, k)
		}
	}
	return len(old), s.Delete(ctx, old...)
}

// List returns the keys under prefix.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var keys []string
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, classify(fmt.Sprintf("list objects under %s", prefix), obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	return keys, nil
}
