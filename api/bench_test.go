package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productd/productd/api"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/outbox"
)

// benchClients is the number of concurrent clients of the POST benchmark.
const benchClients = 8

// BenchmarkCreateProduct measures POST /products through a real HTTP server
// and, in the same run, its ceiling: the same two-row transaction (a product
// and its outbox row, with the wake-up notification) sent straight through
// pgx by as many clients. It reports both rates and api/ceiling as "ratio".
func BenchmarkCreateProduct(b *testing.B) {
	pool := dbtest.NewPool(b)
	srv := httptest.NewServer(api.NewServer(api.Config{Products: db.NewProductService(pool), Log: logging.Discard()}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}}

	ceiling := func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var id int64
			err := tx.QueryRow(ctx, `INSERT INTO products (user_id, product_name, product_description, product_price, product_images, image_status)
				VALUES (1, 'Laptop', 'A fast laptop', 100.00, '{http://example.com/image1.jpg}', 'pending') RETURNING id`).Scan(&id)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `WITH row AS (INSERT INTO outbox (event_id, event_type, product_id, payload)
				VALUES (gen_random_uuid(), 'product.created', $1, '{"type":"product.created"}') RETURNING id)
				SELECT pg_notify($2, '') FROM row`, id, outbox.NotifyChannel)
			return err
		})
	}
	post := func(ctx context.Context) error {
		resp, err := client.Post(srv.URL+"/products", "application/json", strings.NewReader(seedBody))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}

	// Warm both paths (connections, prepared statements) outside the timing.
	if err := runConcurrently(benchClients*4, ceiling); err != nil {
		b.Fatal(err)
	}
	if err := runConcurrently(benchClients*4, post); err != nil {
		b.Fatal(err)
	}
	// Alternate the two in rounds so that load from elsewhere on the machine
	// weighs on both alike.
	const rounds = 4
	var ceilingTime, apiTime time.Duration
	b.ResetTimer()
	for r := range rounds {
		n := b.N / rounds
		if r == rounds-1 {
			n = b.N - n*(rounds-1)
		}
		start := time.Now()
		if err := runConcurrently(n, ceiling); err != nil {
			b.Fatal(err)
		}
		ceilingTime += time.Since(start)
		start = time.Now()
		if err := runConcurrently(n, post); err != nil {
			b.Fatal(err)
		}
		apiTime += time.Since(start)
	}
	ceilingRate := float64(b.N) / ceilingTime.Seconds()
	apiRate := float64(b.N) / apiTime.Seconds()
	b.StopTimer()
	b.ReportMetric(apiRate, "api_req/s")
	b.ReportMetric(ceilingRate, "pgx_tx/s")
	b.ReportMetric(apiRate/ceilingRate, "ratio")
}

// runConcurrently runs op n times spread over benchClients goroutines.
func runConcurrently(n int, op func(context.Context) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchClients)
	for range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := op(context.Background()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
