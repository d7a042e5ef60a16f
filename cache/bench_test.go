package cache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/internal/redistest"
	"github.com/productd/productd/logging"
)

// The benchmarks need the real Postgres and Redis, like the tests. The
// in-process ones (BenchmarkFind) show the cost of one read on each path;
// BenchmarkHTTP drives the HTTP API with wrk, which `make bench` runs as
//
//	go test -run '^$' -bench HTTP -benchtime 1x ./cache
//
// and whose figures go to docs/BENCHMARKS.md.

// benchProducts is how many products the miss and fallback paths cycle
// through, so that no request of a run repeats an id.
const benchProducts = 60_000

// hotProducts is how many products the hit paths cycle through.
const hotProducts = 100

// seed inserts n products with images and returns their ids' range start.
func seed(b *testing.B, n int) (productd.ProductService, int64) {
	b.Helper()
	pool := dbtest.NewPool(b)
	_, err := pool.Exec(context.Background(), `
		INSERT INTO products (user_id, product_name, product_description, product_price, product_images, compressed_product_images, image_status)
		SELECT 1 + g % 1000, 'product ' || g, 'a product worth benchmarking, number ' || g, 19.99,
		       ARRAY['https://example.com/img/' || g || '-a.jpg', 'https://example.com/img/' || g || '-b.jpg'],
		       ARRAY['http://127.0.0.1:9000/productd/' || g || '-a.jpg', 'http://127.0.0.1:9000/productd/' || g || '-b.jpg'],
		       'done'
		FROM generate_series(1, $1) g`, n)
	if err != nil {
		b.Fatalf("seed products: %v", err)
	}
	var first int64
	if err := pool.QueryRow(context.Background(), `SELECT min(id) FROM products`).Scan(&first); err != nil {
		b.Fatal(err)
	}
	return db.NewProductService(pool), first
}

// benchTimeout bounds the Redis calls of the benchmarks' clients, the
// ceiling's included. It is longer than DefaultTimeout: wrk saturates the two
// cores, a GET then queues for far more than 100 ms, and the figures are to
// show throughput, not how often an overloaded machine times out.
const benchTimeout = time.Second

func openBench(b *testing.B, inner productd.ProductService, url string, local bool) *cache.ProductService {
	b.Helper()
	client, err := cache.NewClient(url, benchTimeout)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Close() })
	c, err := cache.Open(context.Background(), inner, cache.Config{Client: client, Log: logging.Discard(), Prefix: redistest.Prefix(b), Local: local, Timeout: benchTimeout})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// deadRedisURL points at a port nothing listens on.
func deadRedisURL(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return redistest.WithAddr(b, addr)
}

// BenchmarkFind measures one FindProductByID (and the JSON variant) on each
// path, against a bare GET of the same bytes as the ceiling.
func BenchmarkFind(b *testing.B) {
	inner, first := seed(b, 1)
	ctx := context.Background()
	raw := redistest.Client(b)
	ceilingKey := redistest.Prefix(b) + "ceiling"
	p, err := inner.FindProductByID(ctx, first)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal(p)
	if err := raw.Set(ctx, ceilingKey, body, 0).Err(); err != nil {
		b.Fatal(err)
	}
	ceilingClient, _ := cache.NewClient(redistest.URL(), benchTimeout)
	b.Cleanup(func() { _ = ceilingClient.Close() })

	redisTier := openBench(b, inner, redistest.URL(), false)
	localTier := openBench(b, inner, redistest.URL(), true)
	down := openBench(b, inner, deadRedisURL(b), false)
	for _, c := range []*cache.ProductService{redisTier, localTier} {
		for range 3 { // miss, hit (which fills the local tier), local hit
			if _, err := c.FindProductByID(ctx, first); err != nil {
				b.Fatal(err)
			}
		}
	}
	run := func(name string, read func() error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := read(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	run("ceiling-redis-get", func() error { return ceilingClient.Get(ctx, ceilingKey).Err() })
	run("redis-hit", func() error { _, err := redisTier.FindProductByID(ctx, first); return err })
	run("redis-hit-json", func() error { _, err := redisTier.FindProductJSONByID(ctx, first); return err })
	run("local-hit", func() error { _, err := localTier.FindProductByID(ctx, first); return err })
	run("local-hit-json", func() error { _, err := localTier.FindProductJSONByID(ctx, first); return err })
	run("redis-down", func() error { _, err := down.FindProductByID(ctx, first); return err })
	run("database-only", func() error { _, err := inner.FindProductByID(ctx, first); return err })
	run("encode-json", func() error { _, err := json.Marshal(p); return err })
}

// BenchmarkHTTP runs wrk (2 threads, 50 connections) against GET
// /products/{id} on each path, each run paired with a run of the ceiling
// right before or after it (the order alternates by round), so that the
// machine's other load falls on both alike. It prints, per path, the median
// requests per second and the median of the pairs' ratios to the ceiling.
// It ignores b.N: run it with -benchtime 1x.
//
// BENCH_CACHE_SECONDS (default 3) sets each wrk run's length and
// BENCH_CACHE_ROUNDS (default 3) the number of rounds.
func BenchmarkHTTP(b *testing.B) {
	wrkPath, err := exec.LookPath("wrk")
	if err != nil {
		b.Fatal("wrk is not installed: apt-get install -y wrk")
	}
	seconds, rounds := envInt("BENCH_CACHE_SECONDS", 3), envInt("BENCH_CACHE_ROUNDS", 3)
	gin.SetMode(gin.ReleaseMode)
	ctx := context.Background()
	inner, first := seed(b, benchProducts)
	scripts := b.TempDir()
	hot := writeScript(b, scripts, "hot.lua", first, hotProducts)
	cold := writeScript(b, scripts, "cold.lua", first, benchProducts)

	// The access log is formatted as productd formats it; only the write
	// to a terminal or a file is left out.
	accessLog, err := logging.New(io.Discard, "info", "json")
	if err != nil {
		b.Fatal(err)
	}
	quietLog, err := logging.New(io.Discard, "warn", "json")
	if err != nil {
		b.Fatal(err)
	}
	apiServerLogging := func(products productd.ProductService, log *logrus.Logger) http.Handler {
		return api.NewServer(api.Config{Products: products, Log: log})
	}
	apiServer := func(products productd.ProductService) http.Handler { return apiServerLogging(products, accessLog) }

	// The ceiling: Gin without middleware, one GET of the product's JSON
	// from Redis, the bytes written as they came.
	ceilingClient, err := cache.NewClient(redistest.URL(), benchTimeout)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ceilingClient.Close() })
	ceilingPrefix := redistest.Prefix(b)
	for id := first; id < first+hotProducts; id++ {
		p, err := inner.FindProductByID(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := json.Marshal(p)
		if err := ceilingClient.Set(ctx, ceilingPrefix+strconv.FormatInt(id, 10), body, 0).Err(); err != nil {
			b.Fatal(err)
		}
	}
	ceiling := gin.New()
	ceiling.GET("/products/:id", func(c *gin.Context) {
		body, err := ceilingClient.Get(c.Request.Context(), ceilingPrefix+c.Param("id")).Bytes()
		if err != nil {
			c.Status(http.StatusInternalServerError)
			return
		}
		c.Data(http.StatusOK, "application/json; charset=utf-8", body)
	})

	redisTier := openBench(b, inner, redistest.URL(), false)
	localTier := openBench(b, inner, redistest.URL(), true)
	down := openBench(b, inner, deadRedisURL(b), false)

	type variant struct {
		name, path, script string
		handler            func() http.Handler // a fresh one per run where state matters
	}
	fixed := func(h http.Handler) func() http.Handler { return func() http.Handler { return h } }
	variants := []variant{
		{"ceiling: bare gin + redis GET", "/products/", hot, fixed(ceiling)},
		// The API sends the cache's bytes as they are (ProductJSONFinder).
		{"hit, redis tier", "/products/", hot, fixed(apiServer(redisTier))},
		{"hit, local tier", "/products/", hot, fixed(apiServer(localTier))},
		// What the API's middleware (request id, access log line) costs.
		{"hit, redis tier, no access log", "/products/", hot, fixed(apiServerLogging(redisTier, quietLog))},
		{"database only (no cache)", "/products/", cold, fixed(apiServer(inner))},
		// Every request of a run asks for a product no earlier request of
		// the run did, in a cache that is new for the run.
		{"miss (load + fill)", "/products/", cold, func() http.Handler { return apiServer(openBench(b, inner, redistest.URL(), false)) }},
		{"redis down (breaker open)", "/products/", cold, fixed(apiServer(down))},
	}
	// Warm the hit paths (miss, then hit, then local hit).
	for id := first; id < first+hotProducts; id++ {
		for range 3 {
			if _, err := redisTier.FindProductByID(ctx, id); err != nil {
				b.Fatal(err)
			}
			if _, err := localTier.FindProductByID(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	}

	ceilingName := variants[0].name
	variants = variants[1:]
	rps := make(map[string][]float64)
	cpu := make(map[string][]float64)
	ratios := make(map[string][]float64)
	record := func(name string, r wrkResult) {
		rps[name] = append(rps[name], r.rps)
		cpu[name] = append(cpu[name], float64(r.cpuPerReq.Microseconds()))
	}
	for round := range rounds {
		for _, v := range variants {
			var c, r wrkResult
			if round%2 == 0 {
				c = runWrk(b, wrkPath, ceiling, "/products/", hot, seconds)
				r = runWrk(b, wrkPath, v.handler(), v.path, v.script, seconds)
			} else {
				r = runWrk(b, wrkPath, v.handler(), v.path, v.script, seconds)
				c = runWrk(b, wrkPath, ceiling, "/products/", hot, seconds)
			}
			record(ceilingName, c)
			record(v.name, r)
			ratios[v.name] = append(ratios[v.name], r.rps/c.rps)
			fmt.Printf("round %d  %-42s %7.0f req/s %4d µs CPU/req   ceiling %7.0f req/s %4d µs CPU/req   %4.0f %%\n",
				round+1, v.name, r.rps, r.cpuPerReq.Microseconds(), c.rps, c.cpuPerReq.Microseconds(), 100*r.rps/c.rps)
		}
	}

	fmt.Printf("\n| path | requests/s (median of %d runs of %d s) | ratio to the ceiling's adjacent run (median) | server CPU per request (median) |\n|---|---:|---:|---:|\n", rounds, seconds)
	fmt.Printf("| %s | %.0f | 100 %% | %.0f µs |\n", ceilingName, median(rps[ceilingName]), median(cpu[ceilingName]))
	for _, v := range variants {
		fmt.Printf("| %s | %.0f | %.0f %% | %.0f µs |\n", v.name, median(rps[v.name]), 100*median(ratios[v.name]), median(cpu[v.name]))
		b.ReportMetric(100*median(ratios[v.name]), metricName(v.name)+"-%ceiling")
	}
	fmt.Printf("\nlocal tier stats: %+v\n", localTier.Stats())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// writeScript writes a wrk script that cycles each connection through n ids
// from first on, the two threads on alternate ids.
func writeScript(b *testing.B, dir, name string, first int64, n int) string {
	b.Helper()
	script := fmt.Sprintf(`
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end
function init(args)
  counter = 0
  prefix = args[1]
end
function request()
  counter = counter + 1
  return wrk.format("GET", prefix .. (%d + (counter * 2 + tid) %% %d))
end
`, first, n)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

var (
	rpsLine      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	requestsLine = regexp.MustCompile(`(\d+) requests in`)
)

// wrkResult is one wrk run: its throughput, and the CPU time this process
// (the server) spent per request, which the machine's other load disturbs
// far less than throughput.
type wrkResult struct {
	rps        float64
	cpuPerReq  time.Duration
	requestsOK int64
}

// runWrk serves h on a loopback port for the length of one wrk run.
func runWrk(b *testing.B, wrkPath string, h http.Handler, path, script string, seconds int) wrkResult {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	cpuBefore := processCPU(b)
	out, err := exec.Command(wrkPath, "-t2", "-c50", fmt.Sprintf("-d%ds", seconds), "-s", script,
		"http://"+ln.Addr().String(), "--", path).CombinedOutput()
	cpu := processCPU(b) - cpuBefore
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "Non-2xx") {
		b.Fatalf("wrk saw errors:\n%s", out)
	}
	m, n := rpsLine.FindSubmatch(out), requestsLine.FindSubmatch(out)
	if m == nil || n == nil {
		b.Fatalf("no Requests/sec in wrk's output:\n%s", out)
	}
	var r wrkResult
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	r.requestsOK, _ = strconv.ParseInt(string(n[1]), 10, 64)
	if r.requestsOK > 0 {
		r.cpuPerReq = cpu / time.Duration(r.requestsOK)
	}
	return r
}

// processCPU returns the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func metricName(s string) string {
	return strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(s), "-"), "-")
}
