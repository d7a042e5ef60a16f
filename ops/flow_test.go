package ops_test

import (
	"context"
	"strings"
	"testing"

	"github.com/productd/productd/ops"
)

// The relay and broker stages follow what the relay processes report: a
// relay that lost the broker marks both down, a silent one does not count,
// and piled-up rows behind a stalled relay stand out.
func TestFlowFollowsTheRelaysReports(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, ops.Config{})
	stage := func(name string) ops.Stage {
		t.Helper()
		flow, err := f.console.Flow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range flow.Stages {
			if s.Name == name {
				return s
			}
		}
		t.Fatalf("no stage %s in %+v", name, flow)
		return ops.Stage{}
	}
	report := func(process, state string, age string) {
		f.exec(t, `INSERT INTO relay_status (process, state, since, reason, broker_state, updated_at)
			VALUES ($1, $2, now(), 'because', 'connecting', now() - $3::interval)
			ON CONFLICT (process) DO UPDATE SET state = $2, updated_at = now() - $3::interval`, process, state, age)
	}
	report("a", "running", "1 second")
	report("gone", "broker_down", "1 hour")
	if s := stage("relay"); s.Health != ops.HealthOK || s.Note != "1 of 1 relay processes publishing" {
		t.Errorf("one relay running, one silent: %+v", s)
	}
	report("a", "broker_down", "1 second")
	f.create(t, 2)
	f.exec(t, `UPDATE outbox SET created_at = now() - interval '5 minutes'`)
	relay, brk := stage("relay"), stage("broker")
	if relay.Health != ops.HealthDown || !strings.Contains(relay.Note, "waits for the broker") || !relay.PilingUp {
		t.Errorf("relay waiting for the broker with rows piling up: %+v", relay)
	}
	if brk.Health != ops.HealthDown || !strings.Contains(brk.Note, "relay a: because") {
		t.Errorf("broker stage while a relay reports it down: %+v", brk)
	}
	flow, err := f.console.Flow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if flow.Bottleneck != "outbox" {
		t.Errorf("bottleneck = %q, want outbox (rows waiting five minutes)", flow.Bottleneck)
	}
	for _, s := range flow.Stages {
		if s.Name == "done" && s.PilingUp {
			t.Errorf("done piles up too, although the outbox holds the work back: %+v", s)
		}
	}
	report("a", "no_route", "1 second")
	if s := stage("relay"); s.Health != ops.HealthDown || !strings.Contains(s.Note, "no route for the events") {
		t.Errorf("a relay without a route: %+v", s)
	}
	report("a", "stopped", "1 second")
	if s := stage("relay"); s.Health != ops.HealthDown || !strings.Contains(s.Note, "no relay process reported") {
		t.Errorf("only stopped relays: %+v", s)
	}
	if s := stage("storage"); s.Health != ops.HealthUnknown {
		t.Errorf("storage without a check: %+v", s)
	}
}

// The storage stage shows the check's failure.
func TestFlowShowsStorageDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ops.Config{Storage: func(context.Context) error { return errStorage }})
	o, err := f.console.Overview(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range o.Flow.Stages {
		if s.Name == "storage" && (s.Health != ops.HealthDown || s.Note != errStorage.Error()) {
			t.Errorf("storage stage = %+v", s)
		}
	}
	if o.StorageError != errStorage.Error() {
		t.Errorf("storage error = %q", o.StorageError)
	}
}

var errStorage = storageError("check bucket productd: connection refused")

type storageError string

func (e storageError) Error() string { return string(e) }
