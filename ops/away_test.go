package ops_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/ops"
)

// Without its database, every read of the console fails saying what it
// was reading, and an action's failure to be recorded is logged beside the
// action's own result. Without a broker, what needs one says so.
func TestConsoleWithoutItsDatabaseOrBroker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	log, hook := logtest.NewNullLogger()
	c, err := ops.New(ops.Config{Pool: pool, AMQPURL: amqptest.URL(t), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	c.Run(ctx) // without a broker it returns at once
	if err := c.WaitBroker(ctx); err == nil || !strings.Contains(err.Error(), "no broker connection") {
		t.Errorf("WaitBroker without a broker: %v, want it said", err)
	}
	pool.Close()

	// Overview and Flow read concurrently: the first read to fail says what
	// it was reading, whichever it is.
	for _, tc := range []struct {
		name, doing string
		read        func() error
	}{
		{"Actions", "read ops actions", func() error { _, err := c.Actions(ctx, 10); return err }},
		{"Overview", "", func() error { _, err := c.Overview(ctx); return err }},
		{"Flow", "", func() error { _, err := c.Flow(ctx); return err }},
		{"Dead", "list dead outbox rows", func() error { _, err := c.Dead(ctx, ops.DeadFilter{}, 0); return err }},
		{"Product", "read product 7", func() error { _, err := c.Product(ctx, 7); return err }},
		{"Relays", "read relay control", func() error { _, err := c.Relays(ctx); return err }},
		{"Outbox", "read outbox stats", func() error { _, err := c.Outbox(ctx); return err }},
	} {
		if err := tc.read(); err == nil || !strings.HasPrefix(err.Error(), tc.doing) || !strings.HasSuffix(err.Error(), "closed pool") {
			t.Errorf("%s on a closed pool: %v, want the closed pool, saying what was read (%s…)", tc.name, err, tc.doing)
		}
	}

	err = c.RerunImages(ctx, "tester", 7, "")
	if err == nil || !strings.Contains(err.Error(), "re-running images") {
		t.Errorf("re-run without the image pipeline: %v, want it said", err)
	}
	var recorded bool
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.ErrorLevel && e.Message == "ops: cannot record the action" && e.Data["action"] == "re-run images" {
			recorded = true
		}
	}
	if !recorded {
		t.Errorf("the failure to record the re-run was not logged; log: %v", hook.AllEntries())
	}
}

// New refuses a configuration without what the console cannot work
// without, naming it.
func TestNewNamesWhatIsMissing(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	log, _ := logtest.NewNullLogger()
	for want, cfg := range map[string]ops.Config{
		"Config.Pool":    {AMQPURL: "amqp://x", Log: log},
		"Config.AMQPURL": {Pool: pool, Log: log},
		"Config.Log":     {Pool: pool, AMQPURL: "amqp://x"},
		"ListLimit":      {Pool: pool, AMQPURL: "amqp://x", Log: log, ListLimit: -1},
		"ops: ":          {Pool: pool, AMQPURL: "::not a url", Log: log},
	} {
		if _, err := ops.New(cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New without a working %s: %v", want, err)
		}
	}
}

// Without the broker's management API, the flow says the broker is down
// for that reason and that the work queue cannot be read, instead of
// failing: the database's figures are still worth seeing.
func TestFlowWithoutTheManagementAPI(t *testing.T) {
	t.Parallel()
	log, _ := logtest.NewNullLogger()
	c, err := ops.New(ops.Config{Pool: dbtest.NewPool(t), AMQPURL: amqptest.URL(t), ManagementURL: "http://127.0.0.1:1", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Flow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]ops.Stage{}
	for _, s := range f.Stages {
		stages[s.Name] = s
	}
	if b := stages["broker"]; b.Health != ops.HealthDown || !strings.Contains(b.Note, "the management API does not answer") {
		t.Errorf("broker stage %+v, want down because the management API does not answer", b)
	}
	if w := stages["worker"]; w.Health != ops.HealthUnknown || !strings.Contains(w.Note, "cannot be read") {
		t.Errorf("worker stage %+v, want unknown: the work queue cannot be read", w)
	}
}
