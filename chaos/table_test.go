package chaos

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestTableSaysWhatFailedAndWhy(t *testing.T) {
	t.Parallel()
	table := &Table{Rows: []Row{
		{Scenario: "a", Created: 10, Recovery: 1500 * time.Millisecond, MaxCreateLatency: 40 * time.Millisecond, Audit: "ok"},
		{Scenario: "b", Created: 10, Lost: 2, Recovery: -1, Audit: "2 stuck_products", Problems: []string{"lost products: 3, 4"}, Notes: []string{"slow to stop"}},
	}}
	if table.Pass() || !table.Rows[0].Pass() || table.Rows[1].Pass() {
		t.Errorf("verdicts: table %v, rows %v %v", table.Pass(), table.Rows[0].Pass(), table.Rows[1].Pass())
	}
	if (&Table{}).Pass() || (Row{}).Pass() {
		t.Error("nothing run passes")
	}
	var b bytes.Buffer
	if err := table.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| a | 10 | 0 | 0 | 0 | 1.5 s | 40 ms | ok | pass |",
		"| b | 10 | 2 | 0 | 0 | never | 0 ms | 2 stuck_products | **FAIL** |",
		"- lost products: 3, 4", "- note: slow to stop",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
}
