package audit_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/productd/productd/audit"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/storage"
)

// BenchmarkAuditAtScale audits a deployment of AUDIT_BENCH_PRODUCTS
// products (default 100,000; the README's figure is at 1,000,000), of which
// AUDIT_BENCH_OBJECTS (default 5,000) are done with their compressed image in
// the bucket and a cached copy in Redis, the rest without images. Its ceiling,
// measured in the same iteration, reads the same rows, objects and cached
// values once, bare, side by side as the audit's checks run: the audit's own
// work is the comparing. It reports both, their ratio, and the largest heap
// seen during the audit, which stays flat however many products there are
// because every check streams.
func BenchmarkAuditAtScale(b *testing.B) {
	products := envInt(b, "AUDIT_BENCH_PRODUCTS", 100_000)
	objects := envInt(b, "AUDIT_BENCH_OBJECTS", 5_000)
	d := newBenchDeployment(b, products, objects)
	cfg := d.config()
	cfg.ObjectGrace = time.Nanosecond
	b.ResetTimer()
	var auditTime, ceilingTime time.Duration
	var peak uint64
	for range b.N {
		start := time.Now()
		stop := sampleHeap(&peak)
		r, err := audit.Run(context.Background(), cfg)
		stop()
		auditTime += time.Since(start)
		if err != nil || !r.OK() {
			b.Fatalf("audit of a healthy deployment: %v %v %+v", err, r.Errors(), r.Results)
		}
		start = time.Now()
		d.readBare(b)
		ceilingTime += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(products), "products")
	b.ReportMetric(float64(objects), "objects")
	b.ReportMetric(auditTime.Seconds()/n, "audit-s")
	b.ReportMetric(ceilingTime.Seconds()/n, "ceiling-s")
	b.ReportMetric(auditTime.Seconds()/ceilingTime.Seconds(), "ratio")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: want a count", name, v)
	}
	return n
}

// newBenchDeployment fills a deployment: products, the first objects of
// them done with a stored image, cached.
func newBenchDeployment(b *testing.B, products, objects int) *deployment {
	d := newDeployment(b)
	ctx := context.Background()
	public := d.store.URL(storage.PrefixProducts)
	_, err := d.pool.Exec(ctx, `
		INSERT INTO products (user_id, product_name, product_price, product_images, compressed_product_images, image_status)
		SELECT 1, 'p' || g, 1,
			CASE WHEN g <= $2 THEN ARRAY['http://example.com/' || g || '.jpg'] ELSE '{}' END,
			CASE WHEN g <= $2 THEN ARRAY[$3 || g || '/0-0000000000000000.jpg'] ELSE '{}' END,
			CASE WHEN g <= $2 THEN 'done' ELSE 'none' END
		FROM generate_series(1, $1) g`, products, objects, public)
	if err != nil {
		b.Fatal(err)
	}
	var ids []int64
	rows, err := d.pool.Query(ctx, `SELECT id FROM products WHERE image_status = 'done' ORDER BY id`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var failed atomic.Value
	work := make(chan int64)
	for range 16 {
		wg.Go(func() {
			for id := range work {
				key := fmt.Sprintf("%s%d/0-0000000000000000.jpg", storage.PrefixProducts, id)
				if _, err := d.store.Put(ctx, key, []byte("jpeg"), "image/jpeg"); err != nil {
					failed.Store(err)
				}
				if _, err := d.cache.FindProductByID(ctx, id); err != nil {
					failed.Store(err)
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return d
}

// readBare reads what the audit reads, once each and without comparing:
// the products in the order the object check needs and the pending ones,
// the bucket's listing, and the cached products.
func (d *deployment) readBare(b *testing.B) {
	ctx := context.Background()
	var wg sync.WaitGroup
	read := func(sql string, args ...any) {
		rows, err := d.pool.Query(ctx, sql, args...)
		if err != nil {
			b.Error(err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			if _, err := rows.Values(); err != nil {
				b.Error(err)
				return
			}
		}
		if err := rows.Err(); err != nil {
			b.Error(err)
		}
	}
	wg.Go(func() {
		read(`SELECT id::text, id, image_status, compressed_product_images FROM products ORDER BY id::text COLLATE "C"`)
		read(`SELECT p.id, u FROM products p CROSS JOIN LATERAL unnest(p.product_images) AS u WHERE starts_with(u, $1) ORDER BY u COLLATE "C"`,
			d.store.URL(storage.PrefixOriginals))
	})
	wg.Go(func() {
		read(`SELECT id, image_status, now() - updated_at FROM products WHERE image_status IN ('pending', 'processing') ORDER BY id`)
	})
	wg.Go(func() {
		if err := d.store.Walk(ctx, "", func(storage.Object) error { return nil }); err != nil {
			b.Error(err)
		}
	})
	wg.Go(func() {
		err := cache.ScanCached(ctx, d.redis, d.prefix, func(batch []cache.Cached) error {
			ids := make([]int64, len(batch))
			for i, c := range batch {
				ids[i] = c.ID
			}
			_, err := d.products.FindProductsByIDs(ctx, ids)
			return err
		})
		if err != nil {
			b.Error(err)
		}
	})
	wg.Wait()
}

// sampleHeap records the largest heap in use into peak until stop is
// called.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > *peak {
				*peak = m.HeapInuse
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
