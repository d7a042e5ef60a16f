package storage

import (
	"context"
	"fmt"
	"strings"

	"github.com/productd/productd"
)

// originalExts maps the accepted upload types to file extensions.
var originalExts = map[string]string{
	"image/jpeg": "jpg",
	"image/png":  "png",
	"image/gif":  "gif",
	"image/webp": "webp",
}

// PutOriginal stores an uploaded image under a fresh key in PrefixOriginals
// and returns its public URL. contentType is the type sniffed from the
// file, one of the accepted image types.
func (s *Store) PutOriginal(ctx context.Context, contentType string, data []byte) (string, error) {
	ext, ok := originalExts[contentType]
	if !ok {
		return "", productd.Errorf(productd.EUNSUPPORTED, "%s is not an accepted image type", contentType)
	}
	key, err := NewOriginalKey(ext)
	if err != nil {
		return "", err
	}
	return s.Put(ctx, key, data, contentType)
}

// DeleteOriginals removes uploaded originals by their public URLs. URLs
// that are not originals of this store are ignored: a product may name any
// image on the web.
func (s *Store) DeleteOriginals(ctx context.Context, urls []string) error {
	var keys []string
	for _, u := range urls {
		if k, ok := s.KeyFromURL(u); ok && strings.HasPrefix(k, PrefixOriginals) {
			keys = append(keys, k)
		}
	}
	if err := s.Delete(ctx, keys...); err != nil {
		return fmt.Errorf("delete originals: %w", err)
	}
	return nil
}
