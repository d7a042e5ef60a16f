package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productd/productd/internal/imagetest"
)

// BenchmarkEndToEnd measures what a client of productd all waits for: from
// a product's creation (its created_at, set in the creating transaction) to
// its images being done (updated_at, set by the worker's write-back), for
// products with one 2 MP photograph each, created at a steady
// E2E_BENCH_RATE a second (default 20, the target rate of docs/ARCHITECTURE.md) for
// E2E_BENCH_SECONDS (default 10). The photo is fetched over HTTP from a local
// server, as a URL image is. It reports p50_ms, p99_ms and max_ms, and
// done/s: the lowest rate over the runs at which products were done, from
// the first creation to the last write-back (below the rate asked for when
// the machine cannot keep up).
func BenchmarkEndToEnd(b *testing.B) {
	seconds, rate := 10, 20
	if v, err := strconv.Atoi(os.Getenv("E2E_BENCH_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	if v, err := strconv.Atoi(os.Getenv("E2E_BENCH_RATE")); err == nil && v > 0 {
		rate = v
	}
	var photo []byte
	for _, p := range imagetest.Photos(b) {
		if p.Name == "2MP" {
			photo = imagetest.ReadPhoto(b, p)
		}
	}
	d := newDeployment(b)
	logs := d.start(b, "all")
	d.awaitReady(b, logs)
	imageURL := serveImage(b, photo) + "/photo.jpg"
	db, err := pgx.Connect(context.Background(), d.getenv("DATABASE_URL"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close(context.Background())

	var latencies []time.Duration
	var doneRates []float64
	b.ResetTimer()
	for range b.N {
		total := seconds * rate
		tick := time.NewTicker(time.Second / time.Duration(rate))
		for i := range total {
			<-tick.C
			// Sent from its own goroutine so that a slow answer does not
			// hold back the next product.
			go func() {
				req := jsonRequest(b, http.MethodPost, d.url("/products"), map[string]any{
					"user_id": 1, "product_name": fmt.Sprint("bench ", i), "product_price": 1,
					"product_images": []string{imageURL},
				})
				resp, err := d.client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					b.Errorf("POST = %d", resp.StatusCode)
				}
			}()
		}
		tick.Stop()
		// A machine that falls behind the rate still finishes, late: the
		// wait says by how much. A second a product bounds it.
		awaitFor(b, logs, time.Duration(total)*time.Second, fmt.Sprintf("%d products to be done", total), func() (bool, string) {
			var done, failed int
			err := db.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE image_status = 'done'),
				count(*) FILTER (WHERE image_status = 'failed') FROM products`).Scan(&done, &failed)
			if err != nil || failed > 0 {
				b.Fatalf("%d products failed (%v)", failed, err)
			}
			return done == total, fmt.Sprintf("%d of %d done", done, total)
		})
		rows, _ := db.Query(context.Background(), `SELECT updated_at - created_at FROM products`)
		waits, err := pgx.CollectRows(rows, pgx.RowTo[time.Duration])
		if err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, waits...)
		// The rate the pipeline kept: products done over the time from the
		// first creation to the last write-back.
		var span float64
		if err := db.QueryRow(context.Background(),
			`SELECT extract(epoch FROM max(updated_at) - min(created_at))::float8 FROM products`).Scan(&span); err != nil {
			b.Fatal(err)
		}
		doneRates = append(doneRates, float64(total)/span)
		if _, err := db.Exec(context.Background(), `DELETE FROM products`); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	slices.Sort(latencies)
	at := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50_ms")
	b.ReportMetric(at(0.99), "p99_ms")
	b.ReportMetric(at(1), "max_ms")
	b.ReportMetric(float64(rate), "products/s")
	b.ReportMetric(slices.Min(doneRates), "done/s")
}
