package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Image names the server serves under /img/. Valid ones are real images of
// a few sizes; the others fail the image worker for good, each its own way.
const (
	ImageSmall     = "small.jpg"     // 800 × 600 JPEG
	ImageLarge     = "large.jpg"     // 1,600 × 1,200 JPEG: the worker shrinks it
	ImagePNG       = "photo.png"     // 640 × 480 PNG
	ImageNotAnImg  = "text.jpg"      // text served as image/jpeg
	ImageTruncated = "truncated.jpg" // a JPEG cut in the middle
	ImageMissing   = "missing.jpg"   // 404
)

// validImages and invalidImages are what a product's URLs choose from.
var (
	validImages   = []string{ImageSmall, ImageSmall, ImageLarge, ImagePNG}
	invalidImages = []string{ImageNotAnImg, ImageTruncated, ImageMissing}
)

// ImageServer serves generated images on loopback for the products the
// load generator creates. The image worker fetches from it, so the workers
// must let its address through their SSRF guard (IMAGE_FETCH_ALLOW set to
// Addr, or 127.0.0.1:*).
//
// It can hold requests: after Hold, every image request waits until
// Release, which lets a chaos test catch a worker in the middle of an
// image.
type ImageServer struct {
	files map[string][]byte
	srv   *http.Server
	ln    net.Listener

	mu       sync.Mutex
	held     chan struct{} // closed by Release; nil when not holding
	inFlight map[string]int
	served   int64
}

// NewImageServer generates the images and starts serving them on addr
// (127.0.0.1:0 when empty). Close it when done.
func NewImageServer(addr string) (*ImageServer, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	files, err := generateImages()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("image server: listen on %s: %w", addr, err)
	}
	s := &ImageServer{files: files, ln: ln, inFlight: map[string]int{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the server's host:port, what the workers' IMAGE_FETCH_ALLOW must
// open.
func (s *ImageServer) Addr() string { return s.ln.Addr().String() }

// URL returns the URL of the named image, made unique by n so that no two
// products share a URL.
func (s *ImageServer) URL(name string, n int64) string {
	return fmt.Sprintf("http://%s/img/%s?n=%d", s.ln.Addr(), name, n)
}

// File returns the bytes of a valid image, for uploads.
func (s *ImageServer) File(name string) []byte { return s.files[name] }

// Served counts the image requests answered.
func (s *ImageServer) Served() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

// Hold makes every image request from now on wait until Release.
func (s *ImageServer) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = make(chan struct{})
	}
}

// Release lets held requests and every later one through.
func (s *ImageServer) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil {
		close(s.held)
		s.held = nil
	}
}

// InFlight returns the remote addresses (host:port) of the requests being
// served now, held ones included.
func (s *ImageServer) InFlight() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	addrs := make([]string, 0, len(s.inFlight))
	for a := range s.inFlight {
		addrs = append(addrs, a)
	}
	return addrs
}

// Close stops the server, releasing held requests.
func (s *ImageServer) Close() error {
	s.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("image server: %w", err)
	}
	return nil
}

func (s *ImageServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.inFlight[r.RemoteAddr]++
	held := s.held
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.inFlight[r.RemoteAddr]--; s.inFlight[r.RemoteAddr] <= 0 {
			delete(s.inFlight, r.RemoteAddr)
		}
		s.served++
		s.mu.Unlock()
	}()
	if held != nil {
		select {
		case <-held:
		case <-r.Context().Done():
			return
		}
	}
	name := strings.TrimPrefix(r.URL.Path, "/img/")
	data, ok := s.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", contentType(name))
	_, _ = w.Write(data)
}

func contentType(name string) string {
	if strings.HasSuffix(name, ".png") {
		return "image/png"
	}
	return "image/jpeg"
}

// generateImages draws the images: noise over gradients, so that they
// compress like photographs rather than like flat colour.
func generateImages() (map[string][]byte, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	small, err := encodeJPEG(drawPhoto(rng, 800, 600))
	if err != nil {
		return nil, err
	}
	large, err := encodeJPEG(drawPhoto(rng, 1600, 1200))
	if err != nil {
		return nil, err
	}
	var pngData bytes.Buffer
	if err := png.Encode(&pngData, drawPhoto(rng, 640, 480)); err != nil {
		return nil, fmt.Errorf("image server: encode PNG: %w", err)
	}
	return map[string][]byte{
		ImageSmall:     small,
		ImageLarge:     large,
		ImagePNG:       pngData.Bytes(),
		ImageNotAnImg:  []byte("this is not an image, whatever its name says\n"),
		ImageTruncated: small[:len(small)/3],
	}, nil
}

func drawPhoto(rng *rand.Rand, w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			n := uint8(rng.IntN(48))
			img.Set(x, y, color.RGBA{R: uint8(x*255/w) ^ n, G: uint8(y*255/h) + n, B: uint8((x+y)*127/(w+h)) + n, A: 255})
		}
	}
	return img
}

func encodeJPEG(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 88}); err != nil {
		return nil, fmt.Errorf("image server: encode JPEG: %w", err)
	}
	return b.Bytes(), nil
}
