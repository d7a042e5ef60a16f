package audit

import (
	"context"
	"fmt"
	"time"
)

// stuckProducts finds products whose images are pending or processing
// longer than StuckAfter after the product last changed: nothing will move
// them any more.
func (a *auditor) stuckProducts(ctx context.Context, results ...*Result) error {
	res := results[0]
	rows, err := a.cfg.DB.Query(ctx, `
		SELECT id, image_status, now() - updated_at
		FROM products
		WHERE image_status IN ('pending', 'processing')
		ORDER BY id`)
	if err != nil {
		return fmt.Errorf("read unfinished products: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var status string
		var age time.Duration
		if err := rows.Scan(&id, &status, &age); err != nil {
			return fmt.Errorf("read unfinished products: %w", err)
		}
		res.checked(1)
		if age > a.cfg.StuckAfter {
			res.violation(fmt.Sprintf("product %d", id), fmt.Sprintf("images %s for %s since its last change", status, age.Round(time.Second)))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read unfinished products: %w", err)
	}
	return nil
}
