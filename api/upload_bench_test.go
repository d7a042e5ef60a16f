package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/productd/productd/api"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/internal/s3test"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/storage"
	"github.com/productd/productd/uploads"
)

// BenchmarkParallelUploads measures the memory of N parallel multipart
// creates (BENCH_UPLOADS, default 8, the default cap), each with one image
// file of 25 MiB less 1 KiB, sent over HTTP from a pipe: the peak Go heap in
// use and the peak resident set of the process. Its ceiling, measured in
// the same run, is the same uploads through a handler that reads each file
// whole into memory before storing it, as the API did before it spooled
// them to disk. It reports both, and api/ceiling of the heap's growth as
// "heap-ratio".
func BenchmarkParallelUploads(b *testing.B) {
	n := 8
	if v, err := strconv.Atoi(os.Getenv("BENCH_UPLOADS")); err == nil && v > 0 {
		n = v
	}
	const size = api.MaxImageFileBytes - 1<<10
	pool, store := dbtest.NewPool(b), s3test.New(b)
	spooling := httptest.NewServer(api.NewServer(api.Config{
		Products:             db.NewProductService(pool),
		Originals:            uploads.New(uploads.Config{}, pool, store, logging.Discard()),
		Log:                  logging.Discard(),
		MaxConcurrentUploads: n,
	}))
	defer spooling.Close()
	buffering := httptest.NewServer(bufferingHandler(store))
	defer buffering.Close()

	var api, ceiling memoryPeak
	for range b.N {
		api = api.max(measureUploads(b, spooling.URL, n, size))
		ceiling = ceiling.max(measureUploads(b, buffering.URL, n, size))
	}
	b.ReportMetric(api.heapMiB(), "heap-MiB")
	b.ReportMetric(api.rssMiB(), "rss-MiB")
	b.ReportMetric(ceiling.heapMiB(), "ceiling-heap-MiB")
	b.ReportMetric(ceiling.rssMiB(), "ceiling-rss-MiB")
	b.ReportMetric(api.heapGrowth()/ceiling.heapGrowth(), "heap-ratio")
	b.ReportMetric(0, "ns/op")
}

// memoryPeak is what one round of uploads cost the process.
type memoryPeak struct {
	baseHeap, heap, rss uint64 // bytes
}

func (m memoryPeak) heapMiB() float64    { return float64(m.heap) / (1 << 20) }
func (m memoryPeak) rssMiB() float64     { return float64(m.rss) / (1 << 20) }
func (m memoryPeak) heapGrowth() float64 { return float64(m.heap - min(m.baseHeap, m.heap)) }

func (m memoryPeak) max(o memoryPeak) memoryPeak {
	if o.heap > m.heap {
		m.heap, m.baseHeap = o.heap, o.baseHeap
	}
	m.rss = max(m.rss, o.rss)
	return m
}

// measureUploads sends n parallel uploads of size bytes to url and samples
// the heap meanwhile; the peak resident set is the kernel's high-water mark,
// reset before the round.
func measureUploads(b *testing.B, url string, n, size int) memoryPeak {
	b.Helper()
	// What an earlier round left (the ceiling's buffers) goes back to the
	// kernel, so that the resident set starts from the same floor.
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset the peak resident set: %v", err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	peak := memoryPeak{baseHeap: ms.HeapInuse, heap: ms.HeapInuse}
	done := make(chan struct{})
	sampled := make(chan uint64)
	go func() {
		top := ms.HeapInuse
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				sampled <- top
				return
			case <-tick.C:
				var s runtime.MemStats
				runtime.ReadMemStats(&s)
				top = max(top, s.HeapInuse)
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			body, ct := uploadBody(b, size, nil)
			resp, err := http.Post(url+"/products", ct, body)
			if err != nil {
				errs <- err
				return
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				errs <- fmt.Errorf("%d %s", resp.StatusCode, msg)
			}
		})
	}
	wg.Wait()
	close(done)
	peak.heap = <-sampled
	close(errs)
	for err := range errs {
		b.Fatalf("upload: %v", err)
	}
	peak.rss = peakRSS(b)
	return peak
}

// peakRSS reads the process's resident set high-water mark.
func peakRSS(b *testing.B) uint64 {
	b.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// bufferingHandler stores every file of a multipart request after reading
// it whole into memory: the ceiling of BenchmarkParallelUploads.
func bufferingHandler(store *storage.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			data, err := io.ReadAll(part)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if part.FileName() == "" {
				continue
			}
			key, _ := storage.NewOriginalKey(http.DetectContentType(data))
			if _, err := store.PutStream(context.Background(), key, bytes.NewReader(data), int64(len(data)), "image/png"); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.WriteHeader(http.StatusCreated)
	})
}
