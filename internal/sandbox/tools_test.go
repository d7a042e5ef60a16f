package sandbox

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestTailReturnsTheLastLines(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.log")
	if err := os.WriteFile(path, []byte("one\ntwo\nthree\nfour\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for lines, want := range map[int]string{2: "three\nfour", 4: "one\ntwo\nthree\nfour", 10: "one\ntwo\nthree\nfour"} {
		if got := Tail(path, lines); got != want {
			t.Errorf("Tail(%d) = %q, want %q", lines, got, want)
		}
	}
	if got := Tail(filepath.Join(t.TempDir(), "missing.log"), 3); got != "" {
		t.Errorf("Tail of a missing file = %q, want nothing", got)
	}
}

// A toxic that is not toxiproxy's JSON, or the removal of one that is not
// there, is refused, naming it.
func TestProxyRefusesWhatIsNotAToxic(t *testing.T) {
	t.Parallel()
	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upstream.Close()
	p, err := NewProxy("test", upstream.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.AddToxic(`{"name":`); err == nil || !strings.Contains(err.Error(), `add toxic {"name":`) {
		t.Errorf("a broken toxic: %v, want a refusal naming it", err)
	}
	if err := p.RemoveToxic("never-added"); err == nil || !strings.Contains(err.Error(), "remove toxic never-added") {
		t.Errorf("removing a toxic never added: %v, want a refusal naming it", err)
	}
	if err := p.AddLatency("slow", 10); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveToxic("slow"); err != nil {
		t.Errorf("removing the toxic just added: %v", err)
	}
}

// Wait gives up with its context; a process killed then waited for reports
// how it ended, and signalling it once gone is no error.
func TestWaitEndsWithItsContext(t *testing.T) {
	t.Parallel()
	d := open(t)
	p, err := d.Start("sleep", filepath.Join(d.Path(), "sleep.log"), exec.Command("sleep", "600"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with an ended context: %v, want context.Canceled", err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(context.Background()); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Wait after Kill: %v, want the kill reported", err)
	}
	if err := p.Kill(); err != nil {
		t.Errorf("killing a process already gone: %v", err)
	}
}
