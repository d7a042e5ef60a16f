package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productd/productd"
)

// unfinished is the SQL condition of images that wait for a result: done and
// failed are terminal for their images version.
const unfinished = `image_status IN ('pending', 'processing')`

// SetImageResult writes the image worker's result if the product's images
// are still those of res.ImagesVersion and have no result yet. The row's
// version grows so that caches see a newer value. A redelivered or late
// message finds the images done or failed already and changes nothing, not
// even the version: a done product never turns failed.
func (s *ProductService) SetImageResult(ctx context.Context, res productd.ImageResult) (bool, error) {
	compressed := res.CompressedImages
	if compressed == nil {
		compressed = []string{}
	}
	if res.Status != productd.ImageStatusDone && res.Status != productd.ImageStatusFailed {
		return false, fmt.Errorf("set image result of product %d: %q is not a result", res.ProductID, res.Status)
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE products SET
			compressed_product_images = $3,
			image_status = $4,
			image_error  = $5,
			image_runs   = 0,
			version      = version + 1,
			updated_at   = now()
		WHERE id = $1 AND images_version = $2 AND `+unfinished,
		res.ProductID, res.ImagesVersion, compressed, string(res.Status), res.Error)
	if err != nil {
		return false, unavailable(fmt.Sprintf("set image result of product %d", res.ProductID), err)
	}
	return tag.RowsAffected() == 1, nil
}

// StartImageRun moves the images of imagesVersion to processing and counts
// the run, if they still wait for a result. The version grows only when the
// status changes: a second run on processing images changes nothing a
// client sees.
func (s *ProductService) StartImageRun(ctx context.Context, productID, imagesVersion int64) (productd.ImageRun, error) {
	var run productd.ImageRun
	err := s.pool.QueryRow(ctx, `
		UPDATE products SET
			image_status      = 'processing',
			image_runs        = image_runs + 1,
			image_activity_at = now(),
			version    = CASE WHEN image_status = 'processing' THEN version ELSE version + 1 END,
			updated_at = CASE WHEN image_status = 'processing' THEN updated_at ELSE now() END
		WHERE id = $1 AND images_version = $2 AND `+unfinished+`
		RETURNING image_runs - 1`, productID, imagesVersion).Scan(&run.Unfinished)
	if errors.Is(err, pgx.ErrNoRows) {
		return run, nil
	} else if err != nil {
		return run, unavailable(fmt.Sprintf("start image run of product %d", productID), err)
	}
	run.Started = true
	return run, nil
}

// FinishImageRun uncounts a run that ended without a result.
func (s *ProductService) FinishImageRun(ctx context.Context, productID, imagesVersion int64) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE products SET image_runs = greatest(image_runs - 1, 0)
		WHERE id = $1 AND images_version = $2 AND `+unfinished, productID, imagesVersion)
	if err != nil {
		return unavailable(fmt.Sprintf("finish image run of product %d", productID), err)
	}
	return nil
}

// RescheduleImages moves the product's images to a new images version,
// pending, and commits their images_changed event with it. The uploads the
// product owns stay its own: the event asks to remove nothing but the
// compressed images of the old version.
func (s *ProductService) RescheduleImages(ctx context.Context, r productd.Reschedule) (*productd.Product, error) {
	from := make([]string, len(r.From))
	for i, st := range r.From {
		from[i] = string(st)
	}
	var p *productd.Product
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		p, err = scanProduct(tx.QueryRow(ctx, `
			UPDATE products SET
				version        = version + 1,
				images_version = version + 1,
				image_status   = 'pending',
				compressed_product_images = '{}',
				image_error    = '',
				image_runs     = 0,
				image_activity_at = now(),
				image_reschedules = image_reschedules + 1,
				image_reschedule_reason = $2,
				updated_at     = now()
			WHERE id = $1 AND cardinality(product_images) > 0
			  AND ($3 = 0 OR images_version = $3)
			  AND (cardinality($4::text[]) = 0 OR image_status = ANY($4))
			RETURNING `+productColumns,
			r.ProductID, r.Reason, r.ImagesVersion, from))
		if errors.Is(err, pgx.ErrNoRows) {
			return s.whyNotRescheduled(ctx, tx, r)
		} else if err != nil {
			return unavailable(fmt.Sprintf("reschedule images of product %d", r.ProductID), err)
		}
		return enqueue(ctx, tx, productd.EventProductImagesChanged, p.ID, p.Version, p.Images)
	})
	if err != nil {
		return nil, fmt.Errorf("reschedule images of product %d: %w", r.ProductID, err)
	}
	s.wake()
	return p, nil
}

// whyNotRescheduled tells a missing product from one that does not meet
// the conditions of r.
func (s *ProductService) whyNotRescheduled(ctx context.Context, tx pgx.Tx, r productd.Reschedule) error {
	var n int
	var status string
	var version int64
	err := tx.QueryRow(ctx, `SELECT cardinality(product_images), image_status, images_version FROM products WHERE id = $1`, r.ProductID).
		Scan(&n, &status, &version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return notFound(r.ProductID)
	case err != nil:
		return unavailable(fmt.Sprintf("read product %d", r.ProductID), err)
	case n == 0:
		return productd.Errorf(productd.ECONFLICT, "product %d has no images to process", r.ProductID)
	}
	return productd.Errorf(productd.ECONFLICT, "product %d's images are %s at version %d, not what the re-schedule expects", r.ProductID, status, version)
}

// FindStuckImages returns up to limit products whose images have waited
// for a result since before before without a run starting on them, longest
// idle first.
func (s *ProductService) FindStuckImages(ctx context.Context, before time.Time, limit int) ([]productd.StuckImages, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, images_version, image_status, image_activity_at, image_reschedules
		FROM products
		WHERE `+unfinished+` AND image_activity_at < $1
		ORDER BY image_activity_at
		LIMIT $2`, before, limit)
	if err != nil {
		return nil, unavailable("find stuck images", err)
	}
	stuck, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (productd.StuckImages, error) {
		var st productd.StuckImages
		var status string
		err := row.Scan(&st.ProductID, &st.ImagesVersion, &status, &st.Since, &st.Reschedules)
		st.Status, st.Since = productd.ImageStatus(status), st.Since.UTC()
		return st, err
	})
	if err != nil {
		return nil, unavailable("find stuck images", err)
	}
	return stuck, nil
}
