package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/imagetest"
	"github.com/productd/productd/outbox"
)

// createClients is the number of concurrent clients of BenchmarkCreateProduct,
// on both sides of the comparison.
const createClients = 8

// createBody is the body every benchmark POST sends: the seed's example, no
// images, so that nothing but the write path is measured.
const createBody = `{"user_id":1,"product_name":"Laptop","product_description":"A fast laptop","product_price":100.00}`

// BenchmarkCreateProduct measures POST /products against `productd api`
// alone, wired as the binary wires it (the cache, telemetry, the access
// log), driven by wrk over createClients keep-alive connections, and in the
// same run its ceiling: pgbench with as many clients, each transaction
// inserting a product and an outbox row into minimal tables (a primary key
// each, nothing else). The two alternate for CREATE_BENCH_ROUNDS rounds
// (default 3) of CREATE_BENCH_SECONDS each (default 5), each going first in
// turn, so that load from elsewhere on the machine weighs on both alike.
//
// Two more pgbench figures, measured in the same rounds, say what the
// project's schema costs: the same two inserts into its tables (every
// index), with and without a pg_notify in the transaction.
//
// It reports api_req/s, ceiling_tx/s and their ratio, the API's CPU time a
// request (api_cpu_µs/req: this process's, Postgres's not included), and schema_tx/s and
// schema_notify_tx/s with their ratios to the ceiling. It needs wrk and pgbench (Debian's wrk and
// postgresql-client).
func BenchmarkCreateProduct(b *testing.B) {
	wrk := tool(b, "wrk", "wrk")
	pgbench := tool(b, "pgbench", "postgresql-client")
	seconds := envInt(b, "CREATE_BENCH_SECONDS", 5)
	rounds := envInt(b, "CREATE_BENCH_ROUNDS", 3)

	d := newDeployment(b)
	logs := d.start(b, "api")
	d.awaitReady(b, logs)
	dbURL := d.getenv("DATABASE_URL")
	createCeilingTables(b, dbURL)
	payload := eventPayload(b)
	dir := b.TempDir()
	script := func(name, sql string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(sql), 0o600); err != nil {
			b.Fatal(err)
		}
		return path
	}
	ceiling := script("ceiling.sql", pgbenchCreate("ceiling.", payload, false))
	schema := script("schema.sql", pgbenchCreate("public.", payload, false))
	schemaNotify := script("schema-notify.sql", pgbenchCreate("public.", payload, true))
	post := script("post.lua", fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = %q\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", createBody))

	runPgbench := func(file string) float64 {
		return runPgbenchScript(b, pgbench, dbURL, file, seconds)
	}
	var apiRate, apiCPU, ceilingRate, schemaRate, notifyRate []float64
	runWrk := func() float64 {
		cpu := imagetest.CPUTime()
		rate := runWrkScript(b, wrk, d.url("/products"), post, seconds)
		// This process is the API: what it spent, over the requests served.
		apiCPU = append(apiCPU, float64((imagetest.CPUTime()-cpu).Microseconds())/(rate*float64(seconds)))
		return rate
	}

	// Warm both paths (connections, prepared statements, caches).
	runWrkScript(b, wrk, d.url("/products"), post, 1)
	runPgbenchScript(b, pgbench, dbURL, ceiling, 1)
	b.ResetTimer()
	for range b.N {
		for r := range rounds {
			if r%2 == 0 {
				ceilingRate = append(ceilingRate, runPgbench(ceiling))
				apiRate = append(apiRate, runWrk())
			} else {
				apiRate = append(apiRate, runWrk())
				ceilingRate = append(ceilingRate, runPgbench(ceiling))
			}
			schemaRate = append(schemaRate, runPgbench(schema))
			notifyRate = append(notifyRate, runPgbench(schemaNotify))
		}
	}
	b.StopTimer()
	api, ceil := mean(apiRate), mean(ceilingRate)
	b.ReportMetric(api, "api_req/s")
	b.ReportMetric(ceil, "ceiling_tx/s")
	b.ReportMetric(api/ceil, "ratio")
	b.ReportMetric(mean(apiCPU), "api_cpu_µs/req")
	b.ReportMetric(mean(schemaRate), "schema_tx/s")
	b.ReportMetric(mean(schemaRate)/ceil, "schema_ratio")
	b.ReportMetric(mean(notifyRate), "schema_notify_tx/s")
	b.ReportMetric(mean(notifyRate)/ceil, "schema_notify_ratio")
}

// createCeilingTables creates the ceiling's minimal tables in a schema of
// their own: the columns productd writes, a primary key each, no other
// index, constraint or trigger.
func createCeilingTables(b *testing.B, dbURL string) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `
		CREATE SCHEMA ceiling;
		CREATE TABLE ceiling.products (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			user_id bigint NOT NULL, product_name text NOT NULL, product_description text NOT NULL,
			product_price numeric(12, 2) NOT NULL, product_images text[] NOT NULL,
			compressed_product_images text[] NOT NULL DEFAULT '{}', image_status text NOT NULL,
			version bigint NOT NULL DEFAULT 1, images_version bigint NOT NULL DEFAULT 1,
			created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE ceiling.outbox (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			event_id uuid NOT NULL, event_type text NOT NULL, product_id bigint NOT NULL, payload json NOT NULL,
			status text NOT NULL DEFAULT 'pending', attempts integer NOT NULL DEFAULT 0,
			next_attempt_at timestamptz NOT NULL DEFAULT now(), created_at timestamptz NOT NULL DEFAULT now(),
			published_at timestamptz, traceparent text, tracestate text)`)
	if err != nil {
		b.Fatalf("create the ceiling's tables: %v", err)
	}
}

// pgbenchCreate is a pgbench script of one create: a product and its outbox
// row in one transaction, into the tables of schema (with its dot), with a
// pg_notify on the outbox channel when notify is set.
func pgbenchCreate(schema, payload string, notify bool) string {
	var s strings.Builder
	s.WriteString("BEGIN;\n")
	fmt.Fprintf(&s, "INSERT INTO %sproducts (user_id, product_name, product_description, product_price, product_images, image_status) "+
		"VALUES (1, 'Laptop', 'A fast laptop', 100.00, '{}', 'none') RETURNING id \\gset\n", schema)
	fmt.Fprintf(&s, "INSERT INTO %soutbox (event_id, event_type, product_id, payload) "+
		"VALUES (gen_random_uuid(), 'product.created', :id, '%s');\n", schema, payload)
	if notify {
		fmt.Fprintf(&s, "SELECT pg_notify('%s', '');\n", outbox.NotifyChannel)
	}
	s.WriteString("COMMIT;\n")
	return s.String()
}

// eventPayload is the JSON of a product.created event, as an outbox row
// holds it.
func eventPayload(b *testing.B) string {
	ev, err := outbox.NewEvent(productd.EventProductCreated, 1, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	p, err := json.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	return string(p)
}

var pgbenchTPS = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)

// runPgbenchScript runs script with createClients clients for seconds and
// returns its transactions per second.
func runPgbenchScript(b *testing.B, pgbench, dbURL, script string, seconds int) float64 {
	b.Helper()
	out, err := exec.Command(pgbench, "-n", "-M", "prepared", "-c", strconv.Itoa(createClients), "-j", "2",
		"-T", strconv.Itoa(seconds), "-f", script, dbURL).CombinedOutput()
	m := pgbenchTPS.FindSubmatch(out)
	if err != nil || m == nil || !strings.Contains(string(out), "number of failed transactions: 0 ") {
		b.Fatalf("pgbench %s: %v\n%s", filepath.Base(script), err, out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	return tps
}

var wrkRate = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)

// runWrkScript runs wrk with script against url over createClients
// connections for seconds and returns its requests per second. Any answer
// other than 201, or any socket error, fails b.
func runWrkScript(b *testing.B, wrk, url, script string, seconds int) float64 {
	b.Helper()
	out, err := exec.Command(wrk, "-t", "2", "-c", strconv.Itoa(createClients), "-d", strconv.Itoa(seconds)+"s",
		"-s", script, url).CombinedOutput()
	m := wrkRate.FindSubmatch(out)
	if err != nil || m == nil || strings.Contains(string(out), "Non-2xx") || strings.Contains(string(out), "Socket errors") {
		b.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	rate, _ := strconv.ParseFloat(string(m[1]), 64)
	return rate
}

// tool returns the path of the command name, failing b with how to install
// it (Debian's package pkg) when it is missing.
func tool(b *testing.B, name, pkg string) string {
	b.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		b.Fatalf("%s not found: run `apt-get install -y %s` (scripts/bench installs it)", name, pkg)
	}
	return path
}

// envInt returns the positive integer in the environment variable name, or
// def when it is unset.
func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}
