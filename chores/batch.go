package chores

import "context"

// DeleteInBatches calls del with limit batch until it deletes fewer than
// batch rows, and returns how many rows it deleted in all. Retention chores
// delete this way so that no statement holds many row locks or runs long,
// and a run cut short by its timeout has still made progress. It stops at
// del's first error, or when ctx ends between two batches.
func DeleteInBatches(ctx context.Context, batch int, del func(ctx context.Context, limit int) (int64, error)) (int64, error) {
	var total int64
	for {
		n, err := del(ctx, batch)
		total += n
		if err != nil {
			return total, err
		}
		if n < int64(batch) {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
