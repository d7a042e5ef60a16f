package imagetest

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The benchmarks run on real photographs: KDE's wallpaper photos (4 MP
// JPEGs), cut and tiled into camera-sized frames of about 2, 9 and 18 MP,
// each baseline and progressive (the same file losslessly rewritten by
// jpegtran -progressive, as cameras and the web write them). They are not
// in the repository; Photos says how to fetch them.

const fetchPhotos = `mkdir -p ~/.cache/productd/photos && cd ~/.cache/productd/photos && ` +
	`apt-get download plasma-workspace-wallpapers && dpkg -x plasma-workspace-wallpapers_*.deb x` +
	` && apt-get install -y libjpeg-turbo-progs`

// photoNames are the wallpapers that are photographs (Autumn, say, is a
// painting, and decodes faster than a photograph).
var photoNames = []string{"Path", "FallenLeaf", "EveningGlow", "BytheWater", "ColdRipple",
	"ColorfulCups", "Kite", "OneStandsOut", "DarkestHour"}

// Photo is a benchmark photograph.
type Photo struct {
	Name string // "2MP", "9MP", "18MP", or one of them followed by "progressive"
	Path string
	w, h int
	// baseline is the path of the baseline file a progressive one is
	// rewritten from; empty for a baseline photo.
	baseline string
}

// frames are the benchmark photographs: 3:2 like a camera's, 2, 9 and 18
// megapixels, baseline then progressive.
func frames(dir string) []Photo {
	ps := []Photo{{Name: "2MP", w: 1728, h: 1152}, {Name: "9MP", w: 3672, h: 2448}, {Name: "18MP", w: 5184, h: 3456}}
	for i := range ps {
		ps[i].Path = filepath.Join(dir, "bench-"+ps[i].Name+".jpg")
	}
	for _, p := range ps[:3] {
		ps = append(ps, Photo{Name: p.Name + "progressive", Path: filepath.Join(dir, "bench-"+p.Name+"-progressive.jpg"), w: p.w, h: p.h, baseline: p.Path})
	}
	return ps
}

func photoDir() string {
	if d := os.Getenv("PRODUCTD_PHOTOS"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "productd", "photos")
}

var photosOnce = sync.OnceValues(makeBenchPhotos)

// Photos returns the benchmark photographs, smallest first, making them
// from the wallpapers the first time. When the wallpapers are missing it
// fails tb with the command that fetches them.
func Photos(tb testing.TB) []Photo {
	tb.Helper()
	photos, err := photosOnce()
	if err != nil {
		tb.Fatalf("benchmark photos: %v\nfetch them with:\n  %s", err, fetchPhotos)
	}
	return photos
}

// ReadPhoto returns the bytes of p.
func ReadPhoto(tb testing.TB, p Photo) []byte {
	tb.Helper()
	data, err := os.ReadFile(p.Path)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func makeBenchPhotos() ([]Photo, error) {
	dir := photoDir()
	photos := frames(dir)
	var missing bool
	for _, p := range photos {
		if _, err := os.Stat(p.Path); err != nil {
			missing = true
		}
	}
	if !missing {
		return photos, nil
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
	for _, p := range photos {
		if p.baseline != "" {
			if out, err := exec.Command("jpegtran", "-progressive", "-copy", "all", "-outfile", p.Path, p.baseline).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("jpegtran -progressive %s: %v %s", p.baseline, err, out)
			}
			continue
		}
		var buf bytes.Buffer
		// Cameras write about quality 92 with 4:2:0 chroma, as image/jpeg does.
		if err := jpeg.Encode(&buf, mosaic.SubImage(image.Rect(200, 100, 200+p.w, 100+p.h)), &jpeg.Options{Quality: 92}); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p.Path, buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
	}
	return photos, nil
}

// CPUTime returns the CPU time this process has used, user and system.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// SamplePeakHeap samples the live heap every millisecond until the returned
// function is called, which returns the largest sample in bytes.
func SamplePeakHeap() func() uint64 {
	// runtime/metrics reads the heap without stopping the world, unlike
	// runtime.ReadMemStats, so sampling does not slow the work measured.
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	return samplePeak(time.Millisecond, func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	})
}

// SamplePeakRSS samples the resident memory of the process every 10 ms
// until the returned function is called, which returns the largest sample
// in bytes. Unlike the heap, it counts what C libraries (libvips) allocate.
func SamplePeakRSS() func() uint64 {
	page := uint64(os.Getpagesize())
	return samplePeak(10*time.Millisecond, func() uint64 {
		// statm: size resident shared ... in pages.
		var size, rss uint64
		if b, err := os.ReadFile("/proc/self/statm"); err == nil {
			fmt.Sscan(string(b), &size, &rss) //nolint:errcheck // a failed read counts as 0
		}
		return rss * page
	})
}

// samplePeak calls read every interval, and once at once, until the
// returned function is called, which returns the largest value read.
func samplePeak(interval time.Duration, read func() uint64) func() uint64 {
	done := make(chan struct{})
	result := make(chan uint64)
	go func() {
		var peak uint64
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			peak = max(peak, read())
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
