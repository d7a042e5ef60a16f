package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productd/productd"
	"github.com/productd/productd/storage"
)

// objects compares the bucket with the database, each read once in key
// order: compressed images (storage.PrefixProducts, one folder per product)
// against each product's compressed image URLs, then uploaded originals
// (storage.PrefixOriginals) against the uploads table, which records the
// product that owns each. A done product's compressed image or an owned
// upload that is not in the bucket is a missing object; an object that no
// product owns is an orphan once it is older than ObjectGrace.
func (a *auditor) objects(ctx context.Context, results ...*Result) error {
	missing, orphan := results[0], results[1]
	suspects, err := a.compressedObjects(ctx, orphan)
	if err != nil {
		return err
	}
	originals, err := a.originalObjects(ctx, orphan)
	if err != nil {
		return err
	}
	return a.confirmMissing(ctx, missing, append(suspects, originals...))
}

// missingObject is an object a product lists that the listing did not show.
type missingObject struct {
	productID int64
	key       string
	// original is true for an uploaded original, false for a compressed
	// image.
	original bool
}

// productObjects is a product's row as the compressed-object merge needs it.
type productObjects struct {
	idText string
	id     int64
	status productd.ImageStatus
	// want are the keys of its compressed images ("" for a URL that is not
	// one of the bucket's), and seen which of them the listing showed. A
	// product has few images: slices beat maps here.
	want []string
	seen []bool
}

// see marks key seen and reports whether the product lists it.
func (p *productObjects) see(key string) bool {
	for i, k := range p.want {
		if k == key {
			p.seen[i] = true
			return true
		}
	}
	return false
}

// compressedObjects merges the listing of storage.PrefixProducts with the
// products in the same order: the text of their ids, byte by byte, which is
// the order of their folders' keys (a folder "12/" sorts before "123/" as
// "12" does before "123"). It returns the compressed images done products
// list that the listing did not show, to be confirmed.
func (a *auditor) compressedObjects(ctx context.Context, orphan *Result) ([]missingObject, error) {
	tx, err := a.cfg.DB.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("read products: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	// The sort of every product by its id's text spills to disk with the
	// default work_mem; a little more keeps it in memory up to millions.
	if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '64MB'`); err != nil {
		return nil, fmt.Errorf("read products: %w", err)
	}
	rows, err := tx.Query(ctx, `
		SELECT id::text, id, image_status, compressed_product_images
		FROM products
		ORDER BY id::text COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("read products: %w", err)
	}
	defer rows.Close()
	next := func() (*productObjects, error) {
		if !rows.Next() {
			return nil, rows.Err()
		}
		var p productObjects
		var status string
		var urls []string
		if err := rows.Scan(&p.idText, &p.id, &status, &urls); err != nil {
			return nil, err
		}
		p.status = productd.ImageStatus(status)
		if len(urls) > 0 {
			p.want, p.seen = make([]string, len(urls)), make([]bool, len(urls))
			for i, u := range urls {
				p.want[i], _ = a.cfg.Store.KeyFromURL(u)
			}
		}
		return &p, nil
	}

	var suspects []missingObject
	finish := func(p *productObjects) {
		if p.status != productd.ImageStatusDone {
			return
		}
		for i, key := range p.want {
			if !p.seen[i] {
				suspects = append(suspects, missingObject{productID: p.id, key: key})
			}
		}
	}
	cur, err := next()
	if err != nil {
		return nil, fmt.Errorf("read products: %w", err)
	}
	cutoff := time.Now().Add(-a.cfg.ObjectGrace)
	err = a.cfg.Store.Walk(ctx, storage.PrefixProducts, func(obj storage.Object) error {
		orphan.checked(1)
		owner, ok := ownerOf(obj.Key)
		if !ok {
			if obj.LastModified.Before(cutoff) {
				orphan.violation("object "+obj.Key, "not in a product's folder")
			}
			return nil
		}
		for cur != nil && cur.idText < owner {
			finish(cur)
			var err error
			if cur, err = next(); err != nil {
				return fmt.Errorf("read products: %w", err)
			}
		}
		switch {
		case cur == nil || cur.idText != owner:
			if obj.LastModified.Before(cutoff) {
				orphan.violation("object "+obj.Key, "product "+owner+" does not exist")
			}
		case cur.see(obj.Key):
		case cur.status == productd.ImageStatusPending || cur.status == productd.ImageStatusProcessing:
			// Its images are being processed: the result is on its way.
		case obj.LastModified.Before(cutoff):
			orphan.violation("object "+obj.Key, fmt.Sprintf("not among the compressed images of product %s (%s)", owner, cur.status))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for cur != nil {
		finish(cur)
		if cur, err = next(); err != nil {
			return nil, fmt.Errorf("read products: %w", err)
		}
	}
	return suspects, nil
}

// ownerOf reads the product id of a key products/{id}/...: digits only, so
// that the order of keys is the order of ids as text.
func ownerOf(key string) (string, bool) {
	rest := strings.TrimPrefix(key, storage.PrefixProducts)
	id, _, ok := strings.Cut(rest, "/")
	if !ok || id == "" || strings.Trim(id, "0123456789") != "" {
		return "", false
	}
	return id, true
}

// originalObjects merges the listing of storage.PrefixOriginals with the
// uploads table, both in key order. An upload a product owns must have its
// object; an object must have an upload that a product owns, unless it is
// younger than ObjectGrace (a request may be storing it, or the periodic
// sweep may not have removed a staged or released one yet).
func (a *auditor) originalObjects(ctx context.Context, orphan *Result) ([]missingObject, error) {
	rows, err := a.cfg.DB.Query(ctx, `
		SELECT object_key, state, coalesce(product_id, 0), now() - since
		FROM uploads
		ORDER BY object_key COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("read the uploads: %w", err)
	}
	defer rows.Close()
	type upload struct {
		key       string
		state     string
		productID int64
		age       time.Duration
	}
	next := func() (*upload, error) {
		if !rows.Next() {
			return nil, rows.Err()
		}
		var u upload
		if err := rows.Scan(&u.key, &u.state, &u.productID, &u.age); err != nil {
			return nil, err
		}
		return &u, nil
	}
	var suspects []missingObject
	cur, err := next()
	if err != nil {
		return nil, fmt.Errorf("read the uploads: %w", err)
	}
	// advanceTo moves past every upload whose key sorts before key, which
	// the listing did not show, and returns the upload of key itself.
	advanceTo := func(key string) (*upload, error) {
		for cur != nil && cur.key < key {
			if cur.state == "owned" {
				suspects = append(suspects, missingObject{productID: cur.productID, key: cur.key, original: true})
			}
			var err error
			if cur, err = next(); err != nil {
				return nil, fmt.Errorf("read the uploads: %w", err)
			}
		}
		if cur != nil && cur.key == key {
			return cur, nil
		}
		return nil, nil
	}
	cutoff := time.Now().Add(-a.cfg.ObjectGrace)
	err = a.cfg.Store.Walk(ctx, storage.PrefixOriginals, func(obj storage.Object) error {
		orphan.checked(1)
		u, err := advanceTo(obj.Key)
		if err != nil {
			return err
		}
		switch {
		case !obj.LastModified.Before(cutoff):
		case u == nil:
			orphan.violation("object "+obj.Key, "no upload record: no product owns it")
		case u.state != "owned" && u.age > a.cfg.ObjectGrace:
			orphan.violation("object "+obj.Key, fmt.Sprintf("upload %s for %s: no product owns it", u.state, u.age.Round(time.Second)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := advanceTo("\U0010FFFF"); err != nil {
		return nil, err
	}
	return suspects, nil
}

// confirmMissing reports the suspects that are still missing after
// RecheckAfter while their products still list them as done: a product
// deleted during the audit, with its objects, is not a violation.
func (a *auditor) confirmMissing(ctx context.Context, missing *Result, suspects []missingObject) error {
	missing.checked(int64(len(suspects)))
	if len(suspects) == 0 {
		return nil
	}
	select {
	case <-time.After(a.cfg.RecheckAfter):
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, s := range suspects {
		var status string
		var compressed []string
		err := a.cfg.DB.QueryRow(ctx, `SELECT image_status, compressed_product_images FROM products WHERE id = $1`, s.productID).
			Scan(&status, &compressed)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		} else if err != nil {
			return fmt.Errorf("recheck product %d: %w", s.productID, err)
		}
		what := "compressed image"
		if s.original {
			what = "uploaded original"
			var owned bool
			err := a.cfg.DB.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM uploads WHERE object_key = $1 AND state = 'owned' AND product_id = $2)`,
				s.key, s.productID).Scan(&owned)
			if err != nil {
				return fmt.Errorf("recheck upload %s: %w", s.key, err)
			}
			if !owned {
				continue
			}
		} else if status != string(productd.ImageStatusDone) || !a.lists(compressed, s.key) {
			continue
		}
		if s.key == "" {
			missing.violation(fmt.Sprintf("product %d", s.productID), "a compressed image URL is not one of the bucket's")
			continue
		}
		exists, err := a.cfg.Store.Exists(ctx, s.key)
		if err != nil {
			return err
		}
		if !exists {
			missing.violation(fmt.Sprintf("product %d", s.productID), fmt.Sprintf("%s %s is not in the bucket", what, s.key))
		}
	}
	return nil
}

// lists reports whether one of urls is key's, or, for key "" (a URL not of
// the bucket), whether one of them is not the bucket's.
func (a *auditor) lists(urls []string, key string) bool {
	for _, u := range urls {
		if k, _ := a.cfg.Store.KeyFromURL(u); k == key {
			return true
		}
	}
	return false
}
