package cache_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/productd/productd"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/internal/redistest"
)

// Wrap the database's product service with the cache and use it wherever a
// productd.ProductService is expected: reads go through Redis, and every
// write through it invalidates before it returns, so the next read loads
// the new state. Redis being down at Open is no error; reads then go to the
// database until it answers.
func Example() {
	ctx := context.Background()
	pool := dbtest.NewPool(&ex) // a program opens its pool with db.Open

	// A second, not DefaultTimeout: the example's output counts hits and
	// misses, which a slow answer on a busy machine would turn into a
	// fallback.
	client, err := cache.NewClient(redistest.URL(), time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	products, err := cache.Open(ctx, db.NewProductService(pool), cache.Config{
		Client:  client,
		Prefix:  redistest.Prefix(&ex), // a deployment's own keys in a shared Redis
		Timeout: time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer products.Close()

	created, err := products.CreateProduct(ctx, &productd.Product{UserID: 1, Name: "Lamp", Price: 1999}, nil)
	if err != nil {
		log.Fatal(err)
	}
	id := created.ProductID
	read := func() {
		p, err := products.FindProductByID(ctx, id)
		if err != nil {
			log.Fatal(err)
		}
		st := products.Stats()
		fmt.Printf("%s: hits %d, misses %d\n", p.Name, st.Hits, st.Misses)
	}
	read() // a miss: loaded from Postgres and stored in Redis
	read() // a hit
	name := "Desk lamp"
	if _, err := products.UpdateProduct(ctx, id, productd.ProductUpdate{Name: &name}); err != nil {
		log.Fatal(err)
	}
	read() // a miss: the update left a tombstone
	// Output:
	// Lamp: hits 0, misses 1
	// Lamp: hits 1, misses 1
	// Desk lamp: hits 1, misses 2
}
