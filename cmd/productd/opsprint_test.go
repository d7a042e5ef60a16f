package main

import (
	"strings"
	"testing"
	"time"

	"github.com/productd/productd/ops"
)

// The text of `productd ops status` says which stage piles up, who paused
// the relays and why, and leaves out the relay processes gone silent.
func TestOpsStatusTextSaysWhatNeedsAttention(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var o ops.Overview
	o.At = at
	o.Flow.Stages = []ops.Stage{{Name: "relay", Health: ops.HealthWarn, PilingUp: true, Note: "rows wait"}}
	o.Relays = ops.Relays{Paused: true, ChangedBy: "ops@host", Reason: "broker upgrade", ChangedAt: at,
		Processes: []ops.RelayProcess{{Process: "live-1", State: "paused", Since: at}, {Process: "silent-2", State: "running", Since: at, Stale: true}}}
	var b strings.Builder
	printOverview(&b, o)
	out := b.String()
	for _, want := range []string{"(piling up)", "PAUSED by ops@host at 2026-11-29T12:00:00Z: broker upgrade", "live-1\tpaused since"} {
		if !strings.Contains(out, want) {
			t.Errorf("status text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "silent-2") {
		t.Errorf("status text shows a relay process gone silent:\n%s", out)
	}
}

// A page of dead rows that is not the last says how to read the next.
func TestDeadListTextSaysHowToReadTheNextPage(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	printDead(&b, ops.DeadPage{Rows: []ops.DeadRow{{ID: 9, EventType: "product.created", ProductID: 3, Attempts: 10}}, Next: 9})
	if !strings.Contains(b.String(), "more: --before 9") {
		t.Errorf("dead list text lacks the next page:\n%s", b.String())
	}
	b.Reset()
	printDead(&b, ops.DeadPage{})
	if strings.Contains(b.String(), "more:") {
		t.Errorf("the last page offers another:\n%s", b.String())
	}
}
