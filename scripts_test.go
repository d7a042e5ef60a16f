package productd_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The scripts run on a stock Debian: bash, and mawk as awk.

// lookPath finds a command the scripts' checks need, failing t with the
// command that installs it.
func lookPath(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: run `apt-get install %s`", name, pkg)
	}
	return path
}

func TestScriptsParse(t *testing.T) {
	t.Parallel()
	for _, script := range []string{"scripts/bench", "scripts/services", "scripts/lib.sh", ".ci/run"} {
		if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", script, err, out)
		}
	}
}

// benchOutput is `go test -bench` output as the benchmarks print it.
const benchOutput = `goos: linux
goarch: amd64
pkg: github.com/productd/productd/cmd/productd
BenchmarkCreateProduct-2   	       1	 987654 ns/op	      1013 api_req/s	      1133 ceiling_tx/s	         0.880 ratio	        10 spread
BenchmarkCreateProduct-2   	       1	 987654 ns/op	       950 api_req/s	      1100 ceiling_tx/s	         0.860 ratio	         2 spread
BenchmarkCreateProduct-2   	       1	 987654 ns/op	      1100 api_req/s	      1200 ceiling_tx/s	         0.920 ratio	        33 spread
BenchmarkOther-2           	       1	         5 ns/op	         7 api_req/s
PASS
ok  	github.com/productd/productd/cmd/productd	12.3s
`

func TestMedianAwkUnderMawk(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "post.txt")
	if err := os.WriteFile(file, []byte(benchOutput), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, awk := range []string{lookPath(t, "mawk", "mawk"), lookPath(t, "awk", "mawk")} {
		for _, c := range []struct{ name, unit, want string }{
			{"CreateProduct", "api_req/s", "1013"},
			{"CreateProduct", "ratio", "0.88"},
			{"CreateProduct", "spread", "10"}, // numbers, not strings: "2" would sort between "10" and "33"
			{"CreateProduct", "bogus/s", "-"},
			{"Nothing", "api_req/s", "-"},
		} {
			out, err := exec.Command(awk, "-v", "name="+c.name, "-v", "unit="+c.unit, "-f", "scripts/median.awk", file).CombinedOutput()
			if err != nil || string(out) != c.want {
				t.Errorf("%s: median of %s %s = %q (%v), want %q", awk, c.name, c.unit, out, err, c.want)
			}
		}
	}
}

// scripts/bench report prints its table from earlier output with mawk as
// the only awk on PATH.
func TestBenchReportUnderMawk(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "post.txt"), []byte(benchOutput), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(lookPath(t, "mawk", "mawk"), filepath.Join(bin, "awk")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "scripts/bench", "report")
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "BENCH_OUT="+out)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() != 0 {
		t.Fatalf("scripts/bench report: %v\nstderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{
		"| POST /products, 8 clients, productd api | 1013 req/s | 1133 tx/s (pgbench, minimal tables) | 88 % | ≥ 60 % |",
		"| relay, draining a backlog | - rows/s | - msgs/s (bare amqp091) | - % | ≥ 80 % |",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("no line %q in the report:\n%s", want, stdout.String())
		}
	}
}
