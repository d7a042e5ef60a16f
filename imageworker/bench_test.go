package imageworker

import (
	"context"
	"testing"
	"time"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/imagetest"
)

// BenchmarkWorker runs the whole worker with its default settings (a box of
// 1024 px, GOMAXPROCS images at once) on b.N products of one photograph
// each, served over HTTP and going through RabbitMQ, MinIO and Postgres. It
// reports products per second and the peak heap of the process, the test's
// own servers included.
func BenchmarkWorker(b *testing.B) {
	for _, p := range imagetest.Photos(b) {
		b.Run(p.Name, func(b *testing.B) {
			h := newHarness(b)
			url := h.serve("photo.jpg", imagetest.ReadPhoto(b, p))
			h.start(Config{FetchAllow: []string{"127.0.0.1:*"}}, nil, hooks{})
			events := make([]productd.Event, b.N)
			for i := range events {
				_, events[i] = h.create(url)
			}

			stop := imagetest.SamplePeakHeap()
			b.ResetTimer()
			start := time.Now()
			for _, ev := range events {
				h.publish(ev, nil)
			}
			h.waitFinished(b.N)
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "img/s")
			b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MiB")
			var failed int
			h.pool.QueryRow(context.Background(), `SELECT count(*) FROM products WHERE image_status = 'failed'`).Scan(&failed) //nolint:errcheck // checked below
			if failed != 0 {
				b.Fatalf("%d products failed", failed)
			}
		})
	}
}

// waitFinished waits until n products are done or failed.
func (h *harness) waitFinished(n int) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var finished int
		err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM products WHERE image_status IN ('done', 'failed')`).Scan(&finished)
		if err != nil {
			h.t.Fatal(err)
		}
		if finished >= n {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d of %d products finished", finished, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
