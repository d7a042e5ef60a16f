package db

import (
	"context"
	"errors"
	"fmt"

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
