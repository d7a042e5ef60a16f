package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/productd/productd/chaos"
)

func TestReportPrintsTheTableAndTheVerdict(t *testing.T) {
	t.Parallel()
	passed := chaos.Row{Scenario: "worker-killed", Created: 300, Recovery: 2 * time.Second, MaxCreateLatency: 40 * time.Millisecond, Audit: "ok"}
	lost := chaos.Row{Scenario: "broker-stopped", Created: 300, Lost: 2, Recovery: -1, Audit: "2 stuck_products",
		Problems: []string{"2 acknowledged products never ended"}}
	dir := t.TempDir()

	for _, tc := range []struct {
		name     string
		rows     []chaos.Row
		runErr   error
		jsonOut  string
		code     int
		out, err []string // what each must say
	}{
		{"every scenario passed", []chaos.Row{passed}, nil, filepath.Join(dir, "a", "table.json"), 0,
			[]string{"| worker-killed | 300 | 0 | 0 | 0 | 2.0 s | 40 ms | ok | pass |", "1 scenarios in 1m5s", "chaos: every scenario passed"}, nil},
		{"a loss fails the run and says why", []chaos.Row{passed, lost}, nil, "", 1,
			[]string{"| broker-stopped | 300 | 2 | 0 | 0 | never |", "**FAIL**", "- 2 acknowledged products never ended"}, []string{"chaos: FAILED"}},
		{"a run cut short shows what it finished", []chaos.Row{passed}, errors.New("start the sandbox: no minio on PATH"), "", 1,
			[]string{"| worker-killed |"}, []string{"chaos: start the sandbox: no minio on PATH"}},
		{"a run that finished nothing prints no table", nil, errors.New("interrupted"), "", 1,
			nil, []string{"chaos: interrupted"}},
		// A file where the folder should be: the table is still printed and the verdict kept.
		{"a table that cannot be written as JSON", []chaos.Row{passed}, nil, filepath.Join(dir, "a", "table.json", "x.json"), 0,
			[]string{"chaos: every scenario passed"}, []string{"chaos: write the table as JSON:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			table := &chaos.Table{Rows: tc.rows, Duration: 65 * time.Second}
			if code := report(table, tc.runErr, tc.jsonOut, &out, &errOut); code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tc.code, &out, &errOut)
			}
			for _, want := range tc.out {
				if !strings.Contains(out.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, &out)
				}
			}
			for _, want := range tc.err {
				if !strings.Contains(errOut.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, &errOut)
				}
			}
			if tc.rows == nil && out.Len() > 0 {
				t.Errorf("no scenario ran, yet stdout says:\n%s", &out)
			}
		})
	}

	// The first case wrote its table as JSON, in a folder it made.
	b, err := os.ReadFile(filepath.Join(dir, "a", "table.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got chaos.Table
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(chaos.Table{Rows: []chaos.Row{passed}, Duration: 65 * time.Second}, got); diff != "" {
		t.Errorf("the JSON table (-want +got):\n%s", diff)
	}
}
