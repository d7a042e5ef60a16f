package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/internal/redistest"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/telemetry"
)

// overheadClients is the number of concurrent clients of BenchmarkOverhead.
const overheadClients = 8

// BenchmarkOverhead measures what telemetry costs the API's two hot paths,
// POST /products and a cached GET /products/{id}, through a real HTTP server
// on the real Postgres and Redis, with 8 clients. Each runs against three
// servers that differ only in their instrumentation:
//
//   - telemetry=none: no instrumentation at all (telemetry compiled out of
//     the request path);
//   - telemetry=off: the shipped default, tracing off: the request
//     histogram, no span (the trace context column is NULL);
//   - telemetry=on: tracing on, every request sampled, spans exported to an
//     in-memory exporter that is emptied as it goes.
//
// Sub-benchmarks are named op=…/telemetry=…, so that
//
//	benchstat -col /telemetry out.txt
//
// compares the three side by side. Every run also reports off and on as a
// percentage of none measured in that same run (the variants alternate in
// rounds, so that load from elsewhere weighs on all of them alike).
func BenchmarkOverhead(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	pool := dbtest.NewPool(b)
	client, err := cache.NewClient(redistest.URL(), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	products, err := cache.Open(context.Background(), db.NewProductService(pool), cache.Config{
		Client: client, Log: logging.Discard(), Prefix: redistest.Prefix(b), Local: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = products.Close() })

	exp := tracetest.NewInMemoryExporter()
	off, err := telemetry.New(context.Background(), telemetry.Config{})
	if err != nil {
		b.Fatal(err)
	}
	on, err := telemetry.New(context.Background(), telemetry.Config{Tracing: true, Exporter: exp})
	if err != nil {
		b.Fatal(err)
	}
	servers := map[string]*httptest.Server{}
	for name, tel := range map[string]*telemetry.Telemetry{"none": nil, "off": off, "on": on} {
		cfg := api.Config{Products: products, Log: logging.Discard()}
		if tel != nil {
			cfg.Instrument = tel.HTTP()
		}
		srv := httptest.NewServer(api.NewServer(cfg))
		b.Cleanup(srv.Close)
		servers[name] = srv
	}
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: overheadClients}}

	// One product read by every GET, cached in the in-process tier.
	var id int64
	post := func(base string) func() error {
		return func() error {
			resp, err := httpClient.Post(base+"/products", "application/json", strings.NewReader(
				`{"user_id":1,"product_name":"Laptop","product_description":"A fast laptop","product_images":["http://example.com/image1.jpg"],"product_price":100.00}`))
			if err != nil {
				return err
			}
			return drain(resp, http.StatusCreated)
		}
	}
	get := func(base string) func() error {
		return func() error {
			resp, err := httpClient.Get(fmt.Sprint(base, "/products/", id))
			if err != nil {
				return err
			}
			return drain(resp, http.StatusOK)
		}
	}
	created, err := products.CreateProduct(context.Background(), &productd.Product{UserID: 1, Name: "Lamp", Price: 999}, nil)
	if err != nil {
		b.Fatal(err)
	}
	id = created.ProductID
	ops := map[string]func(string) func() error{"POST": post, "GET": get}
	variants := []string{"none", "off", "on"}
	// Warm every path: connections, prepared statements, the cache.
	for _, op := range ops {
		for _, v := range variants {
			if err := concurrently(200, op(servers[v].URL)); err != nil {
				b.Fatal(err)
			}
		}
	}
	exp.Reset()

	for _, opName := range []string{"POST", "GET"} {
		b.Run("op="+opName, func(b *testing.B) {
			// rounds alternate the variants, each starting a round as often
			// as the others; took adds up each one's time.
			const rounds = 6
			took, cpu := map[string]time.Duration{}, map[string]time.Duration{}
			for r := range rounds {
				n := b.N / rounds
				if r == rounds-1 {
					n = b.N - n*(rounds-1)
				}
				// Each round starts with another variant, so that none
				// always follows the same one.
				for i := range variants {
					v := variants[(r+i)%len(variants)]
					start, startCPU := time.Now(), processCPU(b)
					if err := concurrently(n, ops[opName](servers[v].URL)); err != nil {
						b.Fatal(err)
					}
					took[v] += time.Since(start)
					cpu[v] += processCPU(b) - startCPU
					exp.Reset()
				}
			}
			rate := func(v string) float64 { return float64(b.N) / took[v].Seconds() }
			b.ReportMetric(rate("none"), "none_req/s")
			b.ReportMetric(rate("off"), "off_req/s")
			b.ReportMetric(rate("on"), "on_req/s")
			b.ReportMetric(100*rate("off")/rate("none"), "off_%_of_none")
			b.ReportMetric(100*rate("on")/rate("none"), "on_%_of_none")
			// The CPU this process (server and client) spent per request:
			// what a busy machine disturbs least.
			perReq := func(v string) float64 { return float64(cpu[v].Microseconds()) / float64(b.N) }
			b.ReportMetric(perReq("none"), "none_cpu_µs/req")
			b.ReportMetric(perReq("off"), "off_cpu_µs/req")
			b.ReportMetric(perReq("on"), "on_cpu_µs/req")
			b.ReportMetric(100*perReq("off")/perReq("none"), "off_cpu_%_of_none")
			b.ReportMetric(100*perReq("on")/perReq("none"), "on_cpu_%_of_none")
		})
		// The same, one variant per sub-benchmark, for benchstat.
		for _, v := range variants {
			b.Run("op="+opName+"/telemetry="+v, func(b *testing.B) {
				if err := concurrently(b.N, ops[opName](servers[v].URL)); err != nil {
					b.Fatal(err)
				}
				exp.Reset()
			})
		}
	}
}

// drain reads and closes resp, failing on another status than want.
func drain(resp *http.Response, want int) error {
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, want)
	}
	return nil
}

// concurrently runs op n times spread over overheadClients goroutines and
// returns the first error.
func concurrently(n int, op func() error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	for range overheadClients {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := op(); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		return *err
	}
	return nil
}

// processCPU returns the CPU time, user and system, the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMiddleware is the instrumentation alone, per request, on one
// goroutine with a recorder for a client: none (the bare router), off (the
// request histogram) and on (a span, recorded and dropped).
func BenchmarkMiddleware(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	off, err := telemetry.New(context.Background(), telemetry.Config{})
	if err != nil {
		b.Fatal(err)
	}
	on, err := telemetry.New(context.Background(), telemetry.Config{Tracing: true, Exporter: tracetest.NewNoopExporter()})
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		tel  *telemetry.Telemetry
	}{{"none", nil}, {"off", off}, {"on", on}} {
		r := gin.New()
		if v.tel != nil {
			r.Use(v.tel.HTTP())
		}
		r.GET("/products/:id", func(c *gin.Context) { c.Status(http.StatusOK) })
		req := httptest.NewRequest(http.MethodGet, "/products/42", nil)
		b.Run("telemetry="+v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
