package compress_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/productd/productd/imageworker/internal/compress"
	"github.com/productd/productd/internal/imagetest"
)

// BenchmarkCompressVsVips compresses each frame with the default settings,
// one image at a time, and reports CPU per image next to libvips'
// vipsthumbnail -s 1024 on the same file, measured in the same run. The two
// alternate, a batch of vipsBatch images each, so that both see the same
// load on a shared machine; vips thumbnails its batch in one process so that
// its start-up cost is spread as a long-running worker's would be.
func BenchmarkCompressVsVips(b *testing.B) {
	const vipsBatch = 4
	for _, p := range imagetest.Photos(b) {
		b.Run(p.Name, func(b *testing.B) {
			data := imagetest.ReadPhoto(b, p)
			c := compress.New(compress.Config{})
			dir := b.TempDir()
			var goCPU, vipsCPU, vipsWall time.Duration
			var vipsImages int
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				cpu0 := imagetest.CPUTime()
				if _, err := c.Compress(context.Background(), data); err != nil {
					b.Fatal(err)
				}
				goCPU += imagetest.CPUTime() - cpu0
				if i%vipsBatch == 0 {
					b.StopTimer()
					cpu, wall := imagetest.VipsThumbnail(b, dir, p.Path, vipsBatch)
					vipsCPU, vipsWall, vipsImages = vipsCPU+cpu, vipsWall+wall, vipsImages+vipsBatch
					b.StartTimer()
				}
			}
			perGo := goCPU / time.Duration(b.N)
			perVips := vipsCPU / time.Duration(vipsImages)
			b.ReportMetric(float64(perGo.Microseconds())/1e3, "cpu-ms/img")
			b.ReportMetric(float64(perVips.Microseconds())/1e3, "vips-cpu-ms/img")
			b.ReportMetric(float64((vipsWall/time.Duration(vipsImages)).Microseconds())/1e3, "vips-wall-ms/img")
			b.ReportMetric(float64(perGo)/float64(perVips), "cpu-ratio")
		})
	}
}

// BenchmarkThroughput compresses each photograph with the default settings
// on as many goroutines as the worker's default concurrency (GOMAXPROCS) and
// reports images per second, the peak heap and the peak resident memory of
// the process (libvips allocates outside the Go heap).
func BenchmarkThroughput(b *testing.B) {
	for _, p := range imagetest.Photos(b) {
		b.Run(p.Name, func(b *testing.B) {
			data := imagetest.ReadPhoto(b, p)
			c := compress.New(compress.Config{})
			b.SetParallelism(1)
			runtime.GC()
			stop := imagetest.SamplePeakHeap()
			stopRSS := imagetest.SamplePeakRSS()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Compress(context.Background(), data); err != nil {
						b.Error(err)
						return
					}
				}
			})
			elapsed := time.Since(start)
			peak, rss := stop(), stopRSS()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "img/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
		})
	}
}

// BenchmarkQuality reports how far the compressor's picture (before JPEG
// encoding) is from the straightforward pipeline's: a full decode fitted by
// imaging's Lanczos in floating point, as PSNR on luma.
func BenchmarkQuality(b *testing.B) {
	for _, p := range imagetest.Photos(b) {
		b.Run(p.Name, func(b *testing.B) {
			data := imagetest.ReadPhoto(b, p)
			var psnr float64
			for b.Loop() {
				psnr = compress.FitPSNR(data, compress.DefaultMaxSide)
			}
			b.ReportMetric(psnr, "psnr-dB")
		})
	}
}
