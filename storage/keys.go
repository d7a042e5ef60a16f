package storage

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/productd/productd"
)

// The public prefixes of the bucket. Nothing outside them is readable
// anonymously, and the store deletes nothing outside them.
const (
	PrefixOriginals = "originals/"
	PrefixProducts  = "products/"
)

// CompressedKey returns the key of the compressed form of a product's image:
// products/{productID}/{imagesVersion}/{index}-{first 16 hex digits of the
// original's SHA-256}.{ext}. The same original at the same place of the same
// images always gets the same key, so a redelivered event overwrites its
// earlier result; images of another version never share a key, so the
// objects of replaced images can be removed without touching the current
// ones.
func CompressedKey(productID, imagesVersion int64, index int, originalSHA256 []byte, ext string) string {
	sum := hex.EncodeToString(originalSHA256)
	if len(sum) > 16 {
		sum = sum[:16]
	}
	return fmt.Sprintf("%s%d/%d-%s.%s", ProductPrefix(productID), imagesVersion, index, sum, ext)
}

// ProductPrefix returns the prefix under which all of a product's
// compressed images live: every object under it is the product's own.
func ProductPrefix(productID int64) string {
	return fmt.Sprintf("%s%d/", PrefixProducts, productID)
}

// keyVersion returns the images version of a key under prefix, the
// product's prefix; keys written before versions were part of them, which
// lie directly under the prefix, are version 0.
func keyVersion(prefix, key string) int64 {
	dir, _, ok := strings.Cut(strings.TrimPrefix(key, prefix), "/")
	if !ok {
		return 0
	}
	v, err := strconv.ParseInt(dir, 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// originalExts maps the accepted upload types to file extensions.
var originalExts = map[string]string{
	"image/jpeg": "jpg",
	"image/png":  "png",
	"image/gif":  "gif",
	"image/webp": "webp",
}

// NewOriginalKey returns a fresh key for an uploaded original of
// contentType, one of the accepted image types; any other is an
// EUNSUPPORTED error. Originals are stored before their product exists, so
// the key is unique per upload rather than derived from the product.
func NewOriginalKey(contentType string) (string, error) {
	ext, ok := originalExts[contentType]
	if !ok {
		return "", productd.Errorf(productd.EUNSUPPORTED, "%s is not an accepted image type", contentType)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("generate original key: %w", err)
	}
	return PrefixOriginals + id.String() + "." + ext, nil
}

// URL returns the public URL of key.
func (s *Store) URL(key string) string {
	return s.public + "/" + (&url.URL{Path: key}).EscapedPath()
}

// KeyFromURL returns the key of a public URL that this store handed out, and
// false for any other URL, including one of this store that points outside
// the public prefixes.
func (s *Store) KeyFromURL(raw string) (string, bool) {
	rest, ok := strings.CutPrefix(raw, s.public+"/")
	if !ok || strings.ContainsAny(rest, "?#") {
		return "", false
	}
	key, err := url.PathUnescape(rest)
	if err != nil || strings.Contains(key, "..") {
		return "", false
	}
	if !isPublicKey(key) {
		return "", false
	}
	return key, true
}

// isPublicKey reports whether k names an object under a public prefix.
func isPublicKey(k string) bool {
	for _, p := range []string{PrefixOriginals, PrefixProducts} {
		if len(k) > len(p) && strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func trimSlash(s string) string { return strings.TrimRight(s, "/") }
