package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestListAndRefusals(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-list"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "cluster-leader-killed") || !strings.Contains(out.String(), "worker-killed") {
		t.Errorf("-list: exit %d\n%s", code, out.String())
	}
	if code := run(context.Background(), []string{"-no-such-flag"}, &out, &errOut); code != 2 {
		t.Errorf("a bad flag: exit %d", code)
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"-scenarios", "meteor-strike"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "meteor-strike") {
		t.Errorf("an unknown scenario: exit %d, %q", code, errOut.String())
	}
}
