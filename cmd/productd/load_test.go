package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/productd/productd/loadgen"
)

// TestLoadCommand runs the load generator against productd all: every
// product it creates, by URL, by upload or with an image that must fail,
// ends as it must, and the report says so.
func TestLoadCommand(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	logs := d.start(t, "all")
	d.awaitReady(t, logs)

	var out, errOut bytes.Buffer
	args := []string{"load", "--url", "http://" + d.addr, "--count", "40", "--rate", "0", "--uploads", "0.2", "--invalid", "0.2", "--json"}
	code := d.run(context.Background(), args, &out, &errOut)
	var report loadgen.Report
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("exit %d, report %q: %v\n%s\n%s", code, out.String(), err, errOut.String(), logs)
	}
	if code != 0 || !report.OK() || report.Created != 40 || report.Done+report.Failed != 40 {
		t.Fatalf("exit %d, report %+v\n%s\n%s", code, report, errOut.String(), logs)
	}
	if report.Failed == 0 || report.Done == 0 || report.CreateToDone.N != report.Done {
		t.Errorf("40 products with a fifth invalid: %d done, %d failed (create->done %+v)", report.Done, report.Failed, report.CreateToDone)
	}
	if !strings.Contains(errOut.String(), "created 40") {
		t.Errorf("no progress line with the final count:\n%s", errOut.String())
	}

	for _, args := range [][]string{{"load", "--rate", "fast"}, {"load", "extra"}} {
		errOut.Reset()
		if code := d.run(context.Background(), args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, errOut.String())
		}
	}
	errOut.Reset()
	if code := d.run(context.Background(), []string{"load", "--url", "http://" + d.addr, "--count", "1", "--uploads", "2"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "shares of one") {
		t.Errorf("bad shares: exit %d, stderr %q", code, errOut.String())
	}
}
