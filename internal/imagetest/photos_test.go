package imagetest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/productd/productd/internal/failtest"
)

// These tests set PRODUCTD_PHOTOS, so they do not run in parallel.

// Without the wallpapers, the benchmarks stop with the command that fetches
// them, not with a bare file error.
func TestPhotosWithoutWallpapersSayHowToFetchThem(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PRODUCTD_PHOTOS", dir)
	// Photos looks once per process; this test looks again, in dir.
	saved := photosOnce
	photosOnce = sync.OnceValues(makeBenchPhotos)
	t.Cleanup(func() { photosOnce = saved })
	msg := failtest.Failures(t, func(tb testing.TB) { Photos(tb) })
	for _, want := range []string{fetchPhotos, filepath.Join(dir, "x/usr/share/wallpapers/Path")} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q does not contain %q", msg, want)
		}
	}
}

func TestPhotosFromADamagedWallpaperNameIt(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PRODUCTD_PHOTOS", dir)
	wallpaper := filepath.Join(dir, "x/usr/share/wallpapers/Path/contents/images/2560x1600.jpg")
	if err := os.MkdirAll(filepath.Dir(wallpaper), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wallpaper, []byte("<html>not found</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := makeBenchPhotos()
	if err == nil || !strings.Contains(err.Error(), "decode Path") {
		t.Fatalf("error %v, want one naming the wallpaper Path", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bench-2MP.jpg")); !os.IsNotExist(err) {
		t.Errorf("a benchmark photo was written from a damaged wallpaper: %v", err)
	}
}

// Photos made once are used as they are: making them takes seconds.
func TestBenchPhotosAreMadeOnce(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PRODUCTD_PHOTOS", dir)
	for _, p := range frames(dir) {
		if err := os.WriteFile(p.Path, []byte(p.Name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	photos, err := makeBenchPhotos()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range photos {
		names = append(names, p.Name)
		if got := ReadPhoto(t, p); string(got) != p.Name {
			t.Errorf("%s holds %q: it was made again", p.Path, got)
		}
		if p.w*p.h < 1_000_000 || p.w*2 != p.h*3 {
			t.Errorf("%s is %d × %d, not a camera's frame", p.Name, p.w, p.h)
		}
	}
	if fmt.Sprint(names) != "[2MP 9MP 18MP 2MPprogressive 9MPprogressive 18MPprogressive]" {
		t.Errorf("photos %v, want the smallest first", names)
	}
}

func TestSamplePeakRSSSeesTheProcess(t *testing.T) {
	if peak := SamplePeakRSS()(); peak < 1<<20 {
		t.Fatalf("peak resident memory %d bytes", peak)
	}
}

func TestSamplePeakHeapSeesWhatIsLive(t *testing.T) {
	const size = 64 << 20
	live := bytes.Repeat([]byte{1}, size)
	// The sampler reads the heap once as it starts, while live is held.
	peak := SamplePeakHeap()()
	runtime.KeepAlive(live)
	if peak < size {
		t.Errorf("peak heap %d bytes while %d were live", peak, size)
	}
}

func TestCPUTimeCountsWork(t *testing.T) {
	start := CPUTime()
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for CPUTime() <= start {
		for i := range 1_000_000 {
			x ^= i
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stayed at %v while the test worked (%d)", start, x)
		}
	}
}
