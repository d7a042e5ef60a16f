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
// each, served over HTTP and going through RabbitMQ, MinIO and Postgres:
// fetch, decode, fit, encode, upload, write-back, ack. It reports products
// per second, the CPU the process spent per product (user and system, from
// getrusage: the test's own HTTP server and publisher included, the
// services' processes not) next to vipsthumbnail's CPU per image on the
// same file in the same run, their ratio, and the peak heap and resident
// memory of the process.
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

			// The ceiling first, on the same file: a batch as large as the
			// worker's, in one vipsthumbnail process.
			vipsCPU, _ := imagetest.VipsThumbnail(b, b.TempDir(), p.Path, min(b.N, 8))
			perVips := vipsCPU / time.Duration(min(b.N, 8))

			stop, stopRSS := imagetest.SamplePeakHeap(), imagetest.SamplePeakRSS()
			b.ResetTimer()
			start, cpu0 := time.Now(), imagetest.CPUTime()
			for _, ev := range events {
				h.publish(ev, nil)
			}
			h.waitFinished(b.N)
			elapsed, cpu := time.Since(start), imagetest.CPUTime()-cpu0
			b.StopTimer()
			perProduct := cpu / time.Duration(b.N)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "img/s")
			b.ReportMetric(float64(perProduct.Microseconds())/1e3, "cpu-ms/product")
			b.ReportMetric(float64(perVips.Microseconds())/1e3, "vips-cpu-ms/img")
			b.ReportMetric(float64(perProduct)/float64(perVips), "cpu-ratio")
			b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(stopRSS())/(1<<20), "peak-rss-MiB")
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
