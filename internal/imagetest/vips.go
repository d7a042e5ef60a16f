package imagetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// VipsThumbnail makes n thumbnails of the photo at path with libvips'
// vipsthumbnail -s 1024 (Debian's libvips-tools), all in one process so that
// its start-up is spread as a long-running worker's would be, and returns
// the CPU (user and system, from the process's rusage) and wall time it
// took: the ceiling the image benchmarks measure against. dir holds its
// copies of the photo and the thumbnails.
func VipsThumbnail(tb testing.TB, dir, path string, n int) (cpu, wall time.Duration) {
	tb.Helper()
	vips, err := exec.LookPath("vipsthumbnail")
	if err != nil {
		tb.Fatalf("vipsthumbnail not found: apt-get install -y libvips-tools")
	}
	args := []string{"-s", "1024", "-o", filepath.Join(dir, "%s-out.jpg")}
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("in%d.jpg", i))
		if _, err := os.Stat(p); err != nil {
			if err := os.WriteFile(p, ReadPhoto(tb, Photo{Path: path}), 0o644); err != nil {
				tb.Fatal(err)
			}
		}
		args = append(args, p)
	}
	cmd := exec.Command(vips, args...)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("vipsthumbnail: %v\n%s", err, out)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), time.Since(start)
}
