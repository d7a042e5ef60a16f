package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/productd/productd/internal/dbtest"
)

// These tests set environment variables, so they do not run in parallel.

func TestHelpAndUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "usage: productd") {
		t.Errorf("help: exit %d, %q", code, out.String())
	}
	if code := run(context.Background(), []string{"dance"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "dance"`) {
		t.Errorf("unknown command: exit %d, %q", code, errOut.String())
	}
}

func TestBadConfigurationStopsWithOneLine(t *testing.T) {
	t.Setenv("LOG_LEVEL", "loud")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"api"}, &out, &errOut)
	if code != 2 || strings.Count(errOut.String(), "\n") != 1 || !strings.Contains(errOut.String(), "LOG_LEVEL") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Setenv("DATABASE_URL", dbtest.NewEmpty(t))
	ctx := context.Background()
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "status"}, "pending"},
		{[]string{"migrate"}, "applied 00002 (go) river schema"},
		{[]string{"migrate", "up"}, "database is up to date"},
		{[]string{"migrate", "status"}, "00002  (go) river schema            applied"},
		{[]string{"migrate", "down"}, "rolled back 000"},
	} {
		var out, errOut bytes.Buffer
		if code := run(ctx, step.args, &out, &errOut); code != 0 || !strings.Contains(out.String(), step.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", step.args, code, out.String(), errOut.String(), step.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"migrate", "sideways"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "sideways") {
		t.Errorf("bad direction: exit %d, %q", code, errOut.String())
	}
}

func TestServeAPIUntilCancelled(t *testing.T) {
	t.Parallel()
	// Its own database, address, Redis prefix and bucket: the cache and the
	// storage set-up would otherwise use the defaults a real deployment on
	// this machine uses.
	d := newDeployment(t)
	addr := d.addr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var errOut bytes.Buffer
	go func() { done <- d.run(ctx, []string{"api"}, &bytes.Buffer{}, &errOut) }()

	var resp *http.Response
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		resp, err = http.Get("http://" + addr + "/readyz")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("api never answered: %v\n%s", err, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("readyz = %d", resp.StatusCode)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after cancel\n%s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), `"msg":"http draining in-flight requests"`) {
		t.Errorf("no drain log line in JSON logs:\n%s", errOut.String())
	}
}

func TestServeFailsWithoutDatabase(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none?connect_timeout=1")
	var errOut bytes.Buffer
	if code := run(context.Background(), []string{"api"}, &bytes.Buffer{}, &errOut); code != 1 || !strings.Contains(errOut.String(), "database unreachable") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
