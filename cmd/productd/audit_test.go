package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/audit"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/db"
	"github.com/productd/productd/logging"
)

// TestAuditCommand audits a deployment described by the environment, as an
// operator would: clean, then with a stuck product, as text and as JSON.
func TestAuditCommand(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	ctx := context.Background()
	// The broker's topology, as the relay and the worker declare it.
	b, err := broker.New(broker.Config{URL: d.getenv("AMQP_URL")}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()

	var out, errOut bytes.Buffer
	if code := d.run(ctx, []string{"audit"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "every invariant holds") {
		t.Fatalf("audit of a fresh deployment: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}

	pool, err := db.Open(ctx, d.getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	p := &productd.Product{UserID: 1, Name: "stuck", Price: 1, Images: []string{"http://example.com/a.jpg"}}
	if _, err := db.NewProductService(pool).CreateProduct(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := d.run(ctx, []string{"audit", "--json", "--stuck-after", "1ns"}, &out, &errOut); code != 1 {
		t.Fatalf("audit with a stuck product: exit %d, want 1\n%s\n%s", code, out.String(), errOut.String())
	}
	var report audit.Report
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("--json printed %q: %v", out.String(), err)
	}
	if r := report.Result(audit.CheckStuckProducts); r == nil || r.Violations != 1 {
		t.Errorf("stuck products in the JSON report: %+v", r)
	}

	for _, args := range [][]string{{"audit", "--no-such-flag"}, {"audit", "extra"}} {
		errOut.Reset()
		if code := d.run(ctx, args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, errOut.String())
		}
	}
	d.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/x?connect_timeout=1")
	if code := d.run(ctx, []string{"audit"}, &out, &errOut); code != 1 {
		t.Errorf("audit with the database away: exit %d, want 1", code)
	}
}
