package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd"
	"github.com/productd/productd/outbox"
)

// ProductService implements productd.ProductService on Postgres.
type ProductService struct {
	pool *pgxpool.Pool
	cfg  ServiceConfig
}

var _ productd.ProductService = (*ProductService)(nil)

// ServiceConfig is what a ProductService does beside its queries.
type ServiceConfig struct {
	// Wake is called after each commit that wrote an outbox row, to wake
	// the relays at once: outbox.Notifier's Wake, or the Wake of a relay in
	// the same process. It must not block. Nil wakes nobody: the relays find
	// the rows at their next poll or sweep.
	Wake func()
}

// NewProductService returns a ProductService on pool that wakes no relay.
func NewProductService(pool *pgxpool.Pool) *ProductService {
	return NewProductServiceConfig(pool, ServiceConfig{})
}

// NewProductServiceConfig returns a ProductService on pool with cfg.
func NewProductServiceConfig(pool *pgxpool.Pool, cfg ServiceConfig) *ProductService {
	return &ProductService{pool: pool, cfg: cfg}
}

// wake wakes the relays after a commit that wrote outbox rows.
func (s *ProductService) wake() {
	if s.cfg.Wake != nil {
		s.cfg.Wake()
	}
}

// productColumns is the column list every product query returns, in the
// order scanProduct reads it.
const productColumns = `id, user_id, product_name, product_description, product_price,
	product_images, compressed_product_images, image_status, image_error,
	version, images_version, created_at, updated_at`

func scanProduct(row pgx.Row) (*productd.Product, error) {
	var p productd.Product
	var status string
	err := row.Scan(&p.ID, &p.UserID, &p.Name, &p.Description, &p.Price,
		&p.Images, &p.CompressedImages, &status, &p.ImageError,
		&p.Version, &p.ImagesVersion, &p.CreatedAt, &p.UpdatedAt)
	if err != nil {
		return nil, err
	}
	p.ImageStatus = productd.ImageStatus(status)
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return &p, nil
}

func notFound(id int64) error {
	return productd.Errorf(productd.ENOTFOUND, "product %d not found", id)
}

// FindProductByID returns the product with id or an ENOTFOUND error.
func (s *ProductService) FindProductByID(ctx context.Context, id int64) (*productd.Product, error) {
	p, err := scanProduct(s.pool.QueryRow(ctx, `SELECT `+productColumns+` FROM products WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(id)
	} else if err != nil {
		return nil, unavailable(fmt.Sprintf("find product %d", id), err)
	}
	return p, nil
}

// FindProducts returns one page of products matching filter, in id order.
// Only the filters that are set become conditions, so that each query can use
// the index that leads with its filter.
func (s *ProductService) FindProducts(ctx context.Context, filter productd.ProductFilter) ([]*productd.Product, error) {
	if err := filter.Validate(); err != nil {
		return nil, err
	}
	query, args := listQuery(filter)
	// Planned for its arguments every time: a plan cached for the statement
	// would be made for no name in particular, and one that walks the
	// primary key suits a common term but scans the table for a rare one.
	rows, err := s.pool.Query(ctx, query, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
	if err != nil {
		return nil, unavailable("list products", err)
	}
	products, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*productd.Product, error) { return scanProduct(row) })
	if err != nil {
		return nil, unavailable("list products", err)
	}
	return products, nil
}

// listQuery is the statement FindProducts runs for a validated filter.
func listQuery(filter productd.ProductFilter) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	add("id > ?", filter.AfterID)
	if filter.UserID != nil {
		add("user_id = ?", *filter.UserID)
	}
	if filter.MinPrice != nil {
		add("product_price >= ?", *filter.MinPrice)
	}
	if filter.MaxPrice != nil {
		add("product_price <= ?", *filter.MaxPrice)
	}
	if filter.Name != "" {
		if productd.NameMatchesAnywhere(filter.Name) {
			add("product_name ILIKE ?", "%"+escapeLike(filter.Name)+"%")
		} else {
			add("lower(product_name) LIKE lower(?)", escapeLike(filter.Name)+"%")
		}
	}
	args = append(args, filter.Limit)
	return `SELECT ` + productColumns + ` FROM products WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY id LIMIT $` + strconv.Itoa(len(args)), args
}

// likeEscaper makes every character match itself in a LIKE pattern. It is
// immutable and safe for concurrent use, so one serves every query.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// escapeLike makes every character of s match itself in a LIKE pattern.
func escapeLike(s string) string { return likeEscaper.Replace(s) }

// CreateProduct stores p and its ProductCreated event in one transaction and
// fills in p's generated fields. With a key, the key is claimed in the same
// transaction: a concurrent request with the same key waits for this one and
// then gets its response back.
func (s *ProductService) CreateProduct(ctx context.Context, p *productd.Product, key *productd.IdempotencyKey) (*productd.Created, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.Images == nil {
		p.Images = []string{}
	}
	p.CompressedImages = []string{}
	p.ImageStatus = productd.ImageStatusNone
	if len(p.Images) > 0 {
		p.ImageStatus = productd.ImageStatusPending
	}

	var created *productd.Created
	var err error
	if key == nil && len(p.Uploads) == 0 {
		// Nothing else to write: the one statement commits by itself.
		created, err = insertProduct(ctx, s.pool, p)
	} else {
		err = InTx(ctx, s.pool, func(tx pgx.Tx) error {
			if key != nil {
				replay, err := claimIdempotencyKey(ctx, tx, p.UserID, key)
				if err != nil || replay != nil {
					created = replay
					return err
				}
			}
			c, err := insertProduct(ctx, tx, p)
			if err != nil {
				return err
			}
			if err := claimUploads(ctx, tx, p.ID, p.Uploads); err != nil {
				return err
			}
			if key != nil {
				if err := storeIdempotentResponse(ctx, tx, p.UserID, key, p.ID, c.Body); err != nil {
					return err
				}
			}
			created = c
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("create product: %w", err)
	}
	if !created.Replayed {
		s.wake()
	}
	return created, nil
}

// createSQL inserts a product and its product.created event in one
// statement: a create costs one round trip to Postgres where BEGIN, two
// INSERTs and COMMIT cost four, and it commits by itself outside a
// transaction. The event's JSON is joined around the new id and version
// (outbox.SplitPayload); its row's columns are those outbox.Enqueue writes.
const createSQL = `
	WITH p AS (
		INSERT INTO products (user_id, product_name, product_description, product_price, product_images, image_status)
		VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING id, version, images_version, created_at, updated_at
	), o AS (
		INSERT INTO outbox (event_id, event_type, product_id, payload, traceparent, tracestate)
		SELECT $7::uuid, $8::text, p.id, ($9::text || p.id || $10::text || p.version || $11::text)::json, $12::text, $13::text
		FROM p
	)
	SELECT id, version, images_version, created_at, updated_at FROM p`

// insertProduct inserts p and its product.created event through q (the
// pool, or a transaction), fills in what the database chose, and returns the
// create's answer.
func insertProduct(ctx context.Context, q outbox.Querier, p *productd.Product) (*productd.Created, error) {
	ev, err := outbox.NewEvent(productd.EventProductCreated, 0, 0, p.Images)
	if err != nil {
		return nil, err
	}
	before, between, after, err := outbox.SplitPayload(ev)
	if err != nil {
		return nil, err
	}
	traceParent, traceState := outbox.TraceContext(ctx)
	err = q.QueryRow(ctx, createSQL,
		p.UserID, p.Name, p.Description, p.Price, p.Images, string(p.ImageStatus),
		ev.ID, string(ev.Type), before, between, after, traceParent, traceState,
	).Scan(&p.ID, &p.Version, &p.ImagesVersion, &p.CreatedAt, &p.UpdatedAt)
	if err != nil {
		return nil, unavailable("insert product", err)
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode product %d: %w", p.ID, err)
	}
	return &productd.Created{Product: p, ProductID: p.ID, Body: body}, nil
}

// enqueue writes an event about a product to the outbox inside tx, asking
// the consumer to remove the objects of removeKeys.
func enqueue(ctx context.Context, tx pgx.Tx, typ productd.EventType, productID, version int64, images []string, removeKeys ...string) error {
	ev, err := outbox.NewEvent(typ, productID, version, images)
	if err != nil {
		return err
	}
	ev.RemoveObjects = removeKeys
	return outbox.Enqueue(ctx, tx, ev)
}

// UpdateProduct applies upd in one statement. When the images change, the
// compressed ones are cleared, the status goes back to pending, and an
// ImagesChanged event is committed with the change.
func (s *ProductService) UpdateProduct(ctx context.Context, id int64, upd productd.ProductUpdate) (*productd.Product, error) {
	if err := upd.Validate(); err != nil {
		return nil, err
	}
	if upd.Empty() {
		return s.FindProductByID(ctx, id)
	}
	var images []string // nil keeps the images; pgx sends it as NULL
	if upd.Images != nil {
		images = *upd.Images
		if images == nil {
			images = []string{}
		}
	}
	var p *productd.Product
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		// In the SET list, columns name the old row, so "changed" compares the
		// new images with the ones being replaced.
		const changed = `($5::text[] IS NOT NULL AND $5::text[] IS DISTINCT FROM product_images)`
		p, err = scanProduct(tx.QueryRow(ctx, `
			UPDATE products SET
				product_name        = COALESCE($2, product_name),
				product_description = COALESCE($3, product_description),
				product_price       = COALESCE($4, product_price),
				product_images      = COALESCE($5, product_images),
				compressed_product_images = CASE WHEN `+changed+` THEN '{}' ELSE compressed_product_images END,
				image_status   = CASE WHEN NOT `+changed+` THEN image_status
				                      WHEN cardinality($5::text[]) = 0 THEN 'none' ELSE 'pending' END,
				image_error    = CASE WHEN `+changed+` THEN '' ELSE image_error END,
				image_runs     = CASE WHEN `+changed+` THEN 0 ELSE image_runs END,
				image_reschedules = CASE WHEN `+changed+` THEN 0 ELSE image_reschedules END,
				image_reschedule_reason = CASE WHEN `+changed+` THEN '' ELSE image_reschedule_reason END,
				image_activity_at = CASE WHEN `+changed+` THEN now() ELSE image_activity_at END,
				images_version = CASE WHEN `+changed+` THEN version + 1 ELSE images_version END,
				version        = version + 1,
				updated_at     = now()
			WHERE id = $1
			RETURNING `+productColumns,
			id, upd.Name, upd.Description, upd.Price, images))
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound(id)
		} else if err != nil {
			return unavailable(fmt.Sprintf("update product %d", id), err)
		}
		if err := claimUploads(ctx, tx, p.ID, upd.Uploads); err != nil {
			return err
		}
		if p.ImagesVersion != p.Version {
			return nil
		}
		// The uploads the new images no longer list go, with the change.
		released, err := releaseUploads(ctx, tx, p.ID, p.Images)
		if err != nil {
			return err
		}
		return enqueue(ctx, tx, productd.EventProductImagesChanged, p.ID, p.Version, p.Images, released...)
	})
	if err != nil {
		return nil, fmt.Errorf("update product %d: %w", id, err)
	}
	if p.ImagesVersion == p.Version {
		s.wake() // the images changed: their event is in the outbox
	}
	return p, nil
}

// DeleteProduct removes the product and commits a ProductDeleted event that
// lists the uploads it owned, so that the image worker removes their
// objects with its compressed images. Objects of URLs it merely listed
// belong to others and stay.
func (s *ProductService) DeleteProduct(ctx context.Context, id int64) error {
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		released, err := releaseUploads(ctx, tx, id, nil)
		if err != nil {
			return err
		}
		var version int64
		var images []string
		err = tx.QueryRow(ctx, `DELETE FROM products WHERE id = $1 RETURNING version, product_images`, id).Scan(&version, &images)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound(id)
		} else if err != nil {
			return unavailable(fmt.Sprintf("delete product %d", id), err)
		}
		return enqueue(ctx, tx, productd.EventProductDeleted, id, version+1, images, released...)
	})
	if err != nil {
		return fmt.Errorf("delete product %d: %w", id, err)
	}
	s.wake()
	return nil
}
