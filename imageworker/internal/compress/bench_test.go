package compress_test

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/productd/productd/imageworker/internal/compress"
)

// The benchmarks run on real photographs: KDE's wallpaper photos (4 MP
// JPEGs), cut and tiled into camera-sized frames of about 2, 9 and 18 MP.
// They are not in the repository; benchPhotos says how to fetch them.

const fetchPhotos = `mkdir -p ~/.cache/productd/photos && cd ~/.cache/productd/photos && ` +
	`apt-get download plasma-workspace-wallpapers && dpkg -x plasma-workspace-wallpapers_*.deb x`

// photoNames are the wallpapers that are photographs (Autumn, say, is a
// painting, and decodes faster than a photograph).
var photoNames = []string{"Path", "FallenLeaf", "EveningGlow", "BytheWater", "ColdRipple",
	"ColorfulCups", "Kite", "OneStandsOut", "DarkestHour"}

// benchSizes are the frames: 3:2 like a camera's, 2, 9 and 18 megapixels.
var benchSizes = []struct {
	name string
	w, h int
}{{"2MP", 1728, 1152}, {"9MP", 3672, 2448}, {"18MP", 5184, 3456}}

func photoDir() string {
	if d := os.Getenv("PRODUCTD_PHOTOS"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "productd", "photos")
}

var photosOnce = sync.OnceValues(makeBenchPhotos)

// benchPhotos returns the paths of the benchmark frames by name, making them
// from the wallpapers the first time.
func benchPhotos(b *testing.B) map[string]string {
	b.Helper()
	paths, err := photosOnce()
	if err != nil {
		b.Fatalf("benchmark photos: %v\nfetch them with:\n  %s", err, fetchPhotos)
	}
	return paths
}

func readPhoto(b *testing.B, path string) []byte {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func makeBenchPhotos() (map[string]string, error) {
	dir := photoDir()
	paths := map[string]string{}
	var missing bool
	for _, s := range benchSizes {
		p := filepath.Join(dir, fmt.Sprintf("bench-%s.jpg", s.name))
		paths[s.name] = p
		if _, err := os.Stat(p); err != nil {
			missing = true
		}
	}
	if !missing {
		return paths, nil
	}
	// Tile the photos 3 × 3 (7680 × 4800) and cut each frame from it, so
	// every frame is made of photographic detail at its original scale.
	mosaic := image.NewRGBA(image.Rect(0, 0, 3*2560, 3*1600))
	for i, name := range photoNames {
		f, err := os.Open(filepath.Join(dir, "x/usr/share/wallpapers", name, "contents/images/2560x1600.jpg"))
		if err != nil {
			return nil, err
		}
		img, err := jpeg.Decode(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", name, err)
		}
		at := image.Pt(i%3*2560, i/3*1600)
		draw.Draw(mosaic, image.Rectangle{Min: at, Max: at.Add(image.Pt(2560, 1600))}, img, image.Point{}, draw.Src)
	}
	for _, s := range benchSizes {
		var buf bytes.Buffer
		// Cameras write about quality 92 with 4:2:0 chroma, as image/jpeg does.
		if err := jpeg.Encode(&buf, mosaic.SubImage(image.Rect(200, 100, 200+s.w, 100+s.h)), &jpeg.Options{Quality: 92}); err != nil {
			return nil, err
		}
		if err := os.WriteFile(paths[s.name], buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCompressVsVips compresses each frame with the default settings,
// one image at a time, and reports CPU per image next to libvips'
// vipsthumbnail -s 1024 on the same file, measured in the same run. The two
// alternate, a batch of vipsBatch images each, so that both see the same
// load on a shared machine; vips thumbnails its batch in one process so that
// its start-up cost is spread as a long-running worker's would be.
func BenchmarkCompressVsVips(b *testing.B) {
	const vipsBatch = 4
	vips, err := exec.LookPath("vipsthumbnail")
	if err != nil {
		b.Fatalf("vipsthumbnail not found: apt-get install -y libvips-tools")
	}
	photos := benchPhotos(b)
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			data := readPhoto(b, photos[s.name])
			c := compress.New(compress.Config{})
			dir := b.TempDir()
			var goCPU, vipsCPU, vipsWall time.Duration
			var vipsImages int
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				cpu0 := cpuTime()
				if _, err := c.Compress(data); err != nil {
					b.Fatal(err)
				}
				goCPU += cpuTime() - cpu0
				if i%vipsBatch == 0 {
					b.StopTimer()
					cpu, wall := runVips(b, vips, dir, photos[s.name], vipsBatch)
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

// runVips thumbnails n copies of path in one vipsthumbnail process and
// returns its CPU and wall time.
func runVips(b *testing.B, vips, dir, path string, n int) (cpu, wall time.Duration) {
	b.Helper()
	args := []string{"-s", "1024", "-o", filepath.Join(dir, "%s-out.jpg")}
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("in%d.jpg", i))
		if _, err := os.Stat(p); err != nil {
			if err := os.WriteFile(p, readPhoto(b, path), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		args = append(args, p)
	}
	cmd := exec.Command(vips, args...)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("vipsthumbnail: %v\n%s", err, out)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), time.Since(start)
}

// BenchmarkThroughput compresses 18 MP photographs with the default
// settings on as many goroutines as the worker's default concurrency
// (GOMAXPROCS) and reports images per second and the peak heap.
func BenchmarkThroughput(b *testing.B) {
	photos := benchPhotos(b)
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			data := readPhoto(b, photos[s.name])
			c := compress.New(compress.Config{})
			b.SetParallelism(1)
			runtime.GC()
			stop := samplePeakHeap()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Compress(data); err != nil {
						b.Error(err)
						return
					}
				}
			})
			elapsed := time.Since(start)
			peak := stop()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "img/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// samplePeakHeap samples the live heap every millisecond until the returned
// function is called, which returns the largest sample.
func samplePeakHeap() func() uint64 {
	done := make(chan struct{})
	result := make(chan uint64)
	go func() {
		// runtime/metrics reads the heap without stopping the world, unlike
		// runtime.ReadMemStats, so sampling does not slow the work measured.
		var peak uint64
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				result <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-result }
}

// BenchmarkQuality reports how far the compressor's picture (before JPEG
// encoding) is from the straightforward pipeline's: a full decode fitted by
// imaging's Lanczos in floating point, as PSNR on luma.
func BenchmarkQuality(b *testing.B) {
	photos := benchPhotos(b)
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			data := readPhoto(b, photos[s.name])
			var psnr float64
			for b.Loop() {
				psnr = compress.FitPSNR(data, compress.DefaultMaxSide)
			}
			b.ReportMetric(psnr, "psnr-dB")
		})
	}
}
