package db

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/productd/productd"
)

// FindProductsByIDs returns the products among ids that exist, in id order,
// read exactly as FindProductByID reads one.
func (s *ProductService) FindProductsByIDs(ctx context.Context, ids []int64) ([]*productd.Product, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+productColumns+` FROM products WHERE id = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return nil, unavailable(fmt.Sprintf("find %d products", len(ids)), err)
	}
	products, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*productd.Product, error) { return scanProduct(row) })
	if err != nil {
		return nil, unavailable(fmt.Sprintf("find %d products", len(ids)), err)
	}
	return products, nil
}
