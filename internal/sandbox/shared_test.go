package sandbox

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// takesAway matches what stops, restarts or empties a service: RabbitMQ's
// control commands, Redis's flushes and shutdowns, pg_ctl, and stopping
// containers, system services or what scripts/services started.
var takesAway = regexp.MustCompile(`stop_app|start_app|close_all_connections|rabbitmqctl|rabbitmq-queues|` +
	`(?i:flushall|flushdb)|\.Shutdown(Save|NoSave)\(|pg_ctl|` +
	`docker (stop|kill|restart|rm)|docker compose (stop|down|restart|kill)|systemctl (stop|restart|kill)|` +
	`services down|services-down`)

// TestOnlyTheSandboxTakesServicesAway keeps every drill on private services:
// the Postgres, RabbitMQ, Redis and MinIO on the default ports are shared by
// every test and shell on the machine, and a test that stopped or flushed
// one of them would break the others' runs. Stopping and killing belong to
// this package (and the chaos suite that drives it); no test elsewhere, and
// nothing in cmd/chaos, may do it by itself.
func TestOnlyTheSandboxTakesServicesAway(t *testing.T) {
	root := moduleRoot(t)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "testdata" ||
				rel == filepath.Join("internal", "sandbox")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") && filepath.Dir(rel) != filepath.Join("cmd", "chaos") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := takesAway.FindString(line); m != "" {
				t.Errorf("%s:%d: %q takes a service away; use a private one (internal/sandbox) or toxiproxy (internal/proxytest)", rel, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// moduleRoot is the directory of go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
