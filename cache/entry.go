package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/productd/productd"
)

// entry is a product as the cache keeps it: encoded, exactly as the API
// sends it, for FindProductJSONByID, and decoded for FindProductByID. An
// entry read from Redis is decoded only when FindProductByID asks, once.
type entry struct {
	json                   []byte
	version, imagesVersion int64

	decodeOnce sync.Once
	product    *productd.Product
	decodeErr  error
}

func newEntry(p *productd.Product) (*entry, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode product %d: %w", p.ID, err)
	}
	e := &entry{json: b, version: p.Version, imagesVersion: p.ImagesVersion, product: p}
	e.decodeOnce.Do(func() {})
	return e, nil
}

// decoded returns the entry's product, which callers must not modify.
func (e *entry) decoded() (*productd.Product, error) {
	e.decodeOnce.Do(func() {
		var p productd.Product
		if err := json.Unmarshal(e.json, &p); err != nil {
			e.decodeErr = fmt.Errorf("decode cached product: %w", err)
			return
		}
		p.Version, p.ImagesVersion = e.version, e.imagesVersion
		e.product = &p
	})
	return e.product, e.decodeErr
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
	b := make([]byte, 0, len(e.json)+42)
	b = append(b, valueMark)
	b = strconv.AppendInt(b, e.version, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, e.imagesVersion, 10)
	b = append(b, '|')
	return append(b, e.json...)
}

var errBadValue = errors.New("not a cache value")

// decodeEntry reads a value written by encode. It checks the head only; the
// JSON is decoded by decoded, if ever.
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
	if err1 != nil || err2 != nil || !json.Valid(body) {
		return nil, errBadValue
	}
	return &entry{json: body, version: version, imagesVersion: imagesVersion}, nil
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
