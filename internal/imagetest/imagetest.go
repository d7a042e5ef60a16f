// Package imagetest gives the image worker's tests their fixtures: the
// generated images in imageworker/testdata and the Go tree's own JPEG test
// images.
package imagetest

import (
	"fmt"
	"image"
	"image/color"
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
	return filepath.Join(filepath.Dir(file), "..", "..", "imageworker", "testdata")
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

// CheckUpright returns an error unless img, made from the fixture
// photo-exif6.jpg, is turned upright: a portrait with the fixture's red
// square at its top right, not its top left.
func CheckUpright(img image.Image) error {
	b := img.Bounds()
	inset := b.Dx() / 40
	topRight, topLeft := img.At(b.Max.X-1-inset, b.Min.Y+inset), img.At(b.Min.X+inset, b.Min.Y+inset)
	switch {
	case b.Dx() >= b.Dy():
		return fmt.Errorf("the picture is %v, not a portrait", b.Size())
	case !isRed(topRight):
		return fmt.Errorf("the top right is %v, not the red square", topRight)
	case isRed(topLeft):
		return fmt.Errorf("the red square is at the top left: the picture is not turned upright")
	}
	return nil
}

func isRed(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r>>8 > 180 && g>>8 < 80 && b>>8 < 80
}
