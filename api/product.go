package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/productd/productd"
)

// IdempotencyKeyHeader names the header that makes a POST safe to retry.
const IdempotencyKeyHeader = "Idempotency-Key"

// maxIdempotencyKeyLength matches the check on the idempotency_keys table.
const maxIdempotencyKeyLength = 255

// createRequest is the body of POST /products, as the seed service took it.
type createRequest struct {
	UserID      *int64      `json:"user_id"`
	Name        *string     `json:"product_name"`
	Description string      `json:"product_description"`
	Price       *priceField `json:"product_price"`
	Images      []string    `json:"product_images"`
}

// product turns the request into a validated product.
func (r *createRequest) product() (*productd.Product, error) {
	if r.UserID == nil {
		return nil, productd.Errorf(productd.EUNPROCESSABLE, "user_id is required")
	} else if r.Name == nil {
		return nil, productd.Errorf(productd.EUNPROCESSABLE, "product_name is required")
	} else if r.Price == nil {
		return nil, productd.Errorf(productd.EUNPROCESSABLE, "product_price is required")
	}
	price, err := productd.ParsePrice(r.Price.raw)
	if err != nil {
		return nil, err
	}
	p := &productd.Product{UserID: *r.UserID, Name: *r.Name, Description: r.Description, Price: price, Images: r.Images}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

func (s *Server) createProduct(c *gin.Context) {
	// The key is checked before the body is read, so that a request with a
	// key that cannot be stored uploads nothing.
	key, err := idempotencyKey(c)
	if err != nil {
		s.error(c, err)
		return
	}
	kind, err := bodyKind(c.Request)
	if err != nil {
		s.error(c, err)
		return
	}
	var p *productd.Product
	var hash []byte
	var stored []productd.Upload // originals uploaded with this request
	if kind == bodyMultipart {
		p, hash, stored, err = s.decodeMultipartCreate(c)
	} else {
		p, hash, err = s.decodeJSONCreate(c)
	}
	if err != nil {
		s.error(c, err)
		return
	}
	if key != nil {
		key.RequestHash = hash
	}
	ctx, cancel := s.queryContext(c)
	defer cancel()
	created, err := s.cfg.Products.CreateProduct(ctx, p, key)
	if err != nil || created.Replayed {
		// No product claimed this request's uploads, unless a commit the
		// error hides did: the release removes only unclaimed ones.
		s.releaseUploads(c, stored)
	}
	if err != nil {
		s.error(c, err)
		return
	}
	c.Set(productIDKey, created.ProductID)
	c.Header("Location", "/products/"+strconv.FormatInt(created.ProductID, 10))
	if created.Replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.Data(http.StatusCreated, "application/json; charset=utf-8", created.Body)
}

// decodeJSONCreate reads a JSON create body and returns the product with the
// hash that identifies the request for idempotency.
func (s *Server) decodeJSONCreate(c *gin.Context) (*productd.Product, []byte, error) {
	body, err := readBody(c, s.cfg.MaxBodyBytes)
	if err != nil {
		return nil, nil, err
	}
	var req createRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, nil, err
	}
	p, err := req.product()
	if err != nil {
		return nil, nil, err
	}
	if !wantsIdempotency(c) {
		return p, nil, nil
	}
	return p, requestHash(p), nil
}

// wantsIdempotency reports whether the request carries an Idempotency-Key,
// the only reason to hash it: most requests do not, and a multipart one may
// carry megabytes of files.
func wantsIdempotency(c *gin.Context) bool {
	return c.GetHeader(IdempotencyKeyHeader) != ""
}

// requestHash identifies a create request by the product it asks for, so
// that formatting differences between retries do not matter.
func requestHash(p *productd.Product, extra ...[]byte) []byte {
	canonical, _ := json.Marshal(struct {
		UserID      int64          `json:"u"`
		Name        string         `json:"n"`
		Description string         `json:"d"`
		Price       productd.Price `json:"p"`
		Images      []string       `json:"i"`
		Extra       [][]byte       `json:"x,omitempty"`
	}{p.UserID, p.Name, p.Description, p.Price, p.Images, extra})
	sum := sha256.Sum256(canonical)
	return sum[:]
}

// idempotencyKey reads the Idempotency-Key header; nil when absent. A key
// is text that the idempotency_keys table can hold: one header, valid
// UTF-8, no control characters, at most maxIdempotencyKeyLength
// characters. Its RequestHash is left for the caller.
func idempotencyKey(c *gin.Context) (*productd.IdempotencyKey, error) {
	values := c.Request.Header.Values(IdempotencyKeyHeader)
	switch {
	case len(values) == 0 || values[0] == "" && len(values) == 1:
		return nil, nil
	case len(values) > 1:
		return nil, productd.Errorf(productd.EINVALID, "send one %s header, not %d", IdempotencyKeyHeader, len(values))
	}
	key := values[0]
	if !utf8.ValidString(key) {
		return nil, productd.Errorf(productd.EINVALID, "%s is not valid UTF-8", IdempotencyKeyHeader)
	} else if utf8.RuneCountInString(key) > maxIdempotencyKeyLength {
		return nil, productd.Errorf(productd.EINVALID, "%s is longer than %d characters", IdempotencyKeyHeader, maxIdempotencyKeyLength)
	} else if strings.ContainsFunc(key, unicode.IsControl) {
		return nil, productd.Errorf(productd.EINVALID, "%s contains control characters", IdempotencyKeyHeader)
	}
	return &productd.IdempotencyKey{Key: key}, nil
}

// queryContext bounds what the request asks of Products by
// Config.QueryTimeout. It starts when the request is read, so that a slow
// upload does not eat into it.
func (s *Server) queryContext(c *gin.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
}

func (s *Server) getProduct(c *gin.Context) {
	id, err := productID(c)
	if err != nil {
		s.error(c, err)
		return
	}
	ctx, cancel := s.queryContext(c)
	defer cancel()
	// A service that keeps products encoded (the cache) hands over the
	// bytes as they are, which saves a decode and an encode on every hit.
	if raw, ok := s.cfg.Products.(productd.ProductJSONFinder); ok {
		body, err := raw.FindProductJSONByID(ctx, id)
		if err != nil {
			s.error(c, err)
			return
		}
		c.Data(http.StatusOK, "application/json; charset=utf-8", body)
		return
	}
	p, err := s.cfg.Products.FindProductByID(ctx, id)
	if err != nil {
		s.error(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// productID reads the :id path parameter.
func productID(c *gin.Context) (int64, error) {
	raw := c.Param("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, productd.Errorf(productd.EINVALID, "product id %q is not a positive integer", raw)
	}
	c.Set(productIDKey, id)
	return id, nil
}

func (s *Server) listProducts(c *gin.Context) {
	filter, err := parseFilter(c.Request.URL.Query())
	if err != nil {
		s.error(c, err)
		return
	}
	limit := filter.Limit
	filter.Limit++ // one more row says whether a next page exists
	ctx, cancel := s.queryContext(c)
	defer cancel()
	products, err := s.cfg.Products.FindProducts(ctx, filter)
	if err != nil {
		s.error(c, err)
		return
	}
	if len(products) > limit {
		products = products[:limit]
		q := c.Request.URL.Query()
		q.Set("cursor", encodeCursor(products[limit-1].ID))
		c.Header("Link", "<"+c.Request.URL.Path+"?"+q.Encode()+`>; rel="next"`)
	}
	if products == nil {
		products = []*productd.Product{}
	}
	c.JSON(http.StatusOK, products)
}

// parseFilter reads the list query. Bad values are EINVALID (400): they are
// the client's URL, not a product it wants stored.
func parseFilter(q url.Values) (productd.ProductFilter, error) {
	var f productd.ProductFilter
	if v := q.Get("user_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return f, productd.Errorf(productd.EINVALID, "user_id %q is not a positive integer", v)
		}
		f.UserID = &id
	}
	for _, bound := range []struct {
		name string
		dst  **productd.Price
	}{{"min_price", &f.MinPrice}, {"max_price", &f.MaxPrice}} {
		if v := q.Get(bound.name); v != "" {
			price, err := productd.ParsePrice(v)
			if err != nil {
				return f, productd.Errorf(productd.EINVALID, "%s %q is not a non-negative price with at most two decimals", bound.name, v)
			}
			*bound.dst = &price
		}
	}
	f.Name = q.Get("product_name")
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > productd.MaxListLimit {
			return f, productd.Errorf(productd.EINVALID, "limit must be an integer from 1 to %d", productd.MaxListLimit)
		}
		f.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		after, err := decodeCursor(v)
		if err != nil {
			return f, err
		}
		f.AfterID = after
	}
	return f, f.Validate()
}

// Cursors are opaque to clients so that the keyset behind them may change.
func encodeCursor(lastID int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(lastID, 10)))
}

func decodeCursor(cursor string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err == nil {
		if id, err := strconv.ParseInt(string(raw), 10, 64); err == nil && id > 0 {
			return id, nil
		}
	}
	return 0, productd.Errorf(productd.EINVALID, "cursor %q is not one this server issued", cursor)
}

func (s *Server) updateProduct(c *gin.Context) {
	id, err := productID(c)
	if err != nil {
		s.error(c, err)
		return
	}
	kind, err := bodyKind(c.Request)
	if err != nil {
		s.error(c, err)
		return
	}
	var upd productd.ProductUpdate
	var stored []productd.Upload
	if kind == bodyMultipart {
		upd, stored, err = s.decodeMultipartUpdate(c)
	} else {
		upd, err = s.decodeJSONUpdate(c)
	}
	if err != nil {
		s.error(c, err)
		return
	}
	ctx, cancel := s.queryContext(c)
	defer cancel()
	p, err := s.cfg.Products.UpdateProduct(ctx, id, upd)
	if err != nil {
		s.releaseUploads(c, stored)
		s.error(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// decodeJSONUpdate reads a PATCH body: any of product_name,
// product_description, product_price and product_images. Other fields,
// including the read-only ones, are refused rather than silently ignored.
func (s *Server) decodeJSONUpdate(c *gin.Context) (productd.ProductUpdate, error) {
	var upd productd.ProductUpdate
	body, err := readBody(c, s.cfg.MaxBodyBytes)
	if err != nil {
		return upd, err
	}
	var fields map[string]json.RawMessage
	if err := decodeStrict(body, &fields); err != nil {
		return upd, err
	}
	for name, raw := range fields {
		if string(raw) == "null" {
			return upd, productd.Errorf(productd.EUNPROCESSABLE, "%s cannot be null", name)
		}
		var err error
		switch name {
		case "product_name":
			upd.Name = new(string)
			err = json.Unmarshal(raw, upd.Name)
		case "product_description":
			upd.Description = new(string)
			err = json.Unmarshal(raw, upd.Description)
		case "product_price":
			var pf priceField
			if err = pf.UnmarshalJSON(raw); err == nil {
				var price productd.Price
				price, err = productd.ParsePrice(pf.raw)
				upd.Price = &price
			}
		case "product_images":
			upd.Images = new([]string)
			err = json.Unmarshal(raw, upd.Images)
		default:
			return upd, productd.Errorf(productd.EINVALID, "field %q cannot be changed; PATCH takes product_name, product_description, product_price and product_images", name)
		}
		if err != nil {
			if typeErr, ok := err.(*json.UnmarshalTypeError); ok {
				typeErr.Field = name
			}
			return upd, jsonError(err)
		}
	}
	if err := upd.Validate(); err != nil {
		return upd, err
	}
	return upd, nil
}

func (s *Server) deleteProduct(c *gin.Context) {
	id, err := productID(c)
	if err != nil {
		s.error(c, err)
		return
	}
	ctx, cancel := s.queryContext(c)
	defer cancel()
	if err := s.cfg.Products.DeleteProduct(ctx, id); err != nil {
		s.error(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
