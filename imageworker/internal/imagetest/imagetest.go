// Package imagetest gives the image worker's tests their fixtures: the
// generated images in imageworker/testdata and the Go tree's own JPEG test
// images.
package imagetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Dir returns the directory of the fixtures, imageworker/testdata.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}

// Read returns the fixture called name.
func Read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(), name))
	if err != nil {
		t.Fatalf("%v (the fixtures are made by imageworker/testdata/genfixtures.go)", err)
	}
	return b
}

// GoTestImages returns the paths of the Go tree's image/testdata files that
// match pattern, such as "*.jpeg".
func GoTestImages(t testing.TB, pattern string) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	paths, err := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "src", "image", "testdata", pattern))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no %s in the Go tree's image/testdata: %v", pattern, err)
	}
	return paths
}
