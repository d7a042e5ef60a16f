package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/productd/productd"
)

// entry is a product as the cache keeps it: decoded for FindProductByID and
// encoded, exactly as the API sends it, for FindProductJSONByID.
type entry struct {
	product *productd.Product
	json    []byte
}

func newEntry(p *productd.Product) (*entry, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode product %d: %w", p.ID, err)
	}
	return &entry{product: p, json: b}, nil
}

// A Redis value under a product key is either a value or a tombstone, told
// apart by the first byte:
//
//	V<version>:<images version>|<product JSON>
//	T<random token>
//
// The version leads so that the fill script can compare it without decoding
// JSON; the images version travels outside the JSON because the API never
// shows it.
const (
	valueMark     = 'V'
	tombstoneMark = 'T'
)

// encode returns the Redis value of e.
func (e *entry) encode() []byte {
	p := e.product
	b := make([]byte, 0, len(e.json)+42)
	b = append(b, valueMark)
	b = strconv.AppendInt(b, p.Version, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, p.ImagesVersion, 10)
	b = append(b, '|')
	return append(b, e.json...)
}

var errBadValue = errors.New("not a cache value")

// decodeEntry reads a value written by encode.
func decodeEntry(raw []byte) (*entry, error) {
	if len(raw) == 0 || raw[0] != valueMark {
		return nil, errBadValue
	}
	head, body, ok := bytes.Cut(raw[1:], []byte{'|'})
	if !ok {
		return nil, errBadValue
	}
	v, iv, ok := bytes.Cut(head, []byte{':'})
	if !ok {
		return nil, errBadValue
	}
	version, err1 := strconv.ParseInt(string(v), 10, 64)
	imagesVersion, err2 := strconv.ParseInt(string(iv), 10, 64)
	if err1 != nil || err2 != nil {
		return nil, errBadValue
	}
	var p productd.Product
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadValue, err)
	}
	p.Version, p.ImagesVersion = version, imagesVersion
	return &entry{product: &p, json: body}, nil
}

// isTombstone reports whether raw is an invalidation's tombstone.
func isTombstone(raw []byte) bool { return len(raw) > 0 && raw[0] == tombstoneMark }

// cloneProduct returns a copy of p that shares nothing a caller could change
// with the cached one.
func cloneProduct(p *productd.Product) *productd.Product {
	c := *p
	c.Images = slices.Clone(p.Images)
	c.CompressedImages = slices.Clone(p.CompressedImages)
	return &c
}
