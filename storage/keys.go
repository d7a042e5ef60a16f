package storage

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/uuid"
)

// The public prefixes of the bucket. Nothing outside them is readable
// anonymously, and the store deletes nothing outside them.
const (
	PrefixOriginals = "originals/"
	PrefixProducts  = "products/"
)

// CompressedKey returns the key of the compressed form of a product's image:
// products/{productID}/{index}-{first 16 hex digits of the original's
// SHA-256}.{ext}. The same original at the same place always gets the same
// key, so a redelivered event overwrites its earlier result.
func CompressedKey(productID int64, index int, originalSHA256 []byte, ext string) string {
	sum := hex.EncodeToString(originalSHA256)
	if len(sum) > 16 {
		sum = sum[:16]
	}
	return fmt.Sprintf("%s%d/%d-%s.%s", PrefixProducts, productID, index, sum, ext)
}

// ProductPrefix returns the prefix under which all of a product's
// compressed images live.
func ProductPrefix(productID int64) string {
	return fmt.Sprintf("%s%d/", PrefixProducts, productID)
}

// NewOriginalKey returns a fresh key for an uploaded original with the
// given extension. Originals are stored before their product exists, so the
// key is unique per upload rather than derived from the product: deleting
// one product's original can never remove another's.
func NewOriginalKey(ext string) (string, error) {
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
