package chaos_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/productd/productd/chaos"
	"github.com/productd/productd/logging"
)

// buildProductd builds the binary the fleet runs.
func buildProductd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "productd")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/productd/productd/cmd/productd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build productd: %v\n%s", err, out)
	}
	return bin
}

// TestAWorkerKilledMidImageLosesNothing runs one scenario of the suite end
// to end, small: private services, five productd processes, the load
// generator, a worker SIGKILLed while it fetches an image, the audit. The
// short and full suites (make chaos-short, make chaos) run the rest.
func TestAWorkerKilledMidImageLosesNothing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	logs := t.TempDir()
	var out bytes.Buffer
	table, err := chaos.Run(ctx, chaos.Config{
		Binary: buildProductd(t), Scenarios: []string{"worker-killed"}, Products: 60, Rate: 20,
		SettleFor: 5 * time.Minute, LogDir: logs, Out: &out, Log: logging.Discard(),
	})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if len(table.Rows) != 1 || !table.Pass() {
		t.Fatalf("table %+v\n%s", table.Rows, out.String())
	}
	row := table.Rows[0]
	if row.Created != 60 || row.Audit != "ok" || row.Recovery < 0 {
		t.Errorf("row %+v", row)
	}
	for _, want := range []string{"fault: SIGKILL worker-1", "restored: worker-1 restarted", "load done: 60 created"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the run's output lacks %q:\n%s", want, out.String())
		}
	}
	log, err := os.ReadFile(filepath.Join(logs, "worker-killed", "worker-1.log"))
	if err != nil || strings.Count(string(log), "----- chaos: start") != 2 {
		t.Errorf("worker-1's kept log does not show two starts: %v", err)
	}
	var md bytes.Buffer
	if err := table.WriteMarkdown(&md); err != nil || !strings.Contains(md.String(), "| worker-killed | 60 | 0 | 0 | 0 |") {
		t.Errorf("markdown: %v\n%s", err, md.String())
	}
}

func TestRunRefusesWhatItCannotRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := chaos.Run(ctx, chaos.Config{Scenarios: []string{"broker-stopped"}}); err == nil {
		t.Error("ran without a binary")
	}
	if _, err := chaos.Run(ctx, chaos.Config{Binary: "productd", Scenarios: []string{"meteor-strike"}}); err == nil || !strings.Contains(err.Error(), "meteor-strike") {
		t.Errorf("an unknown scenario: %v", err)
	}
	// A scratch directory that cannot be made: the error comes back, no
	// table, no panic.
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if table, err := chaos.Run(ctx, chaos.Config{Binary: "productd", Scenarios: []string{"broker-stopped"}, Root: file, Log: logging.Discard()}); err == nil || table != nil {
		t.Errorf("a root that is a file: table %v, error %v", table, err)
	}
	names := map[string]bool{}
	for _, s := range chaos.Scenarios() {
		if names[s.Name] || s.Fault == nil || s.Title == "" {
			t.Errorf("scenario %+v", s.Name)
		}
		names[s.Name] = true
	}
	for _, s := range chaos.ShortScenarios {
		if !names[s] {
			t.Errorf("short scenario %q is not a scenario", s)
		}
	}
}
