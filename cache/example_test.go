package cache_test

import (
	"context"
	"fmt"
	"log"

	"github.com/productd/productd/cache"
	"github.com/productd/productd/db"
	"github.com/productd/productd/logging"
)

// Wrap the database's product service with the cache and use it wherever a
// productd.ProductService is expected: reads go through Redis (and memory),
// and every write through it invalidates before it returns. Redis being
// down at Open is no error; reads then go to the database until it answers.
func Example() {
	ctx := context.Background()
	pool, err := db.Open(ctx, "postgres://postgres:postgres@127.0.0.1:5432/productd?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	client, err := cache.NewClient("redis://127.0.0.1:6379/0", cache.DefaultTimeout)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	products, err := cache.Open(ctx, db.NewProductService(pool), cache.Config{
		Client: client,
		Log:    logging.Discard(),
		Local:  true, // keep the hottest products in memory too
	})
	if err != nil {
		log.Fatal(err)
	}
	defer products.Close()

	if p, err := products.FindProductByID(ctx, 1); err == nil {
		fmt.Println(p.Name)
	}
	st := products.Stats()
	fmt.Println(st.Hits, st.Misses, st.Breaker)
}
