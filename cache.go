package productd

import "context"

// ProductJSONFinder is implemented by product services that hold products
// already encoded, such as the Redis cache. A handler that finds it on its
// ProductService can send a product's bytes as they are instead of decoding
// and encoding them again on every read.
type ProductJSONFinder interface {
	// FindProductJSONByID returns the product's JSON, byte for byte what
	// encoding/json writes for the Product, or an ENOTFOUND error. The
	// caller must not modify the returned bytes.
	FindProductJSONByID(ctx context.Context, id int64) ([]byte, error)
}
