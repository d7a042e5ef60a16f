package cache

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/productd/productd"
)

// startedLoad is a load that reports when it starts and ends when released.
type startedLoad struct {
	calls   atomic.Int32
	started chan struct{}
	release chan struct{}
}

func newStartedLoad() *startedLoad {
	return &startedLoad{started: make(chan struct{}, 10), release: make(chan struct{})}
}

func (l *startedLoad) load() (*entry, error) {
	n := l.calls.Add(1)
	l.started <- struct{}{}
	<-l.release
	return newEntry(&productd.Product{ID: int64(n)})
}

// TestFallbackFlightTakesNoCallerOnceLoading: a caller that arrives while a
// fallback load runs gets the next load, which starts after the running one
// ends, and shares it with the other late callers.
func TestFallbackFlightTakesNoCallerOnceLoading(t *testing.T) {
	t.Parallel()
	var g flights
	l := newStartedLoad()
	key := flightKey{id: 1, fallback: true}
	results := make(chan int64, 3)
	call := func() {
		e, err := g.do(context.Background(), key, l.load)
		if err != nil {
			t.Error(err)
		}
		p, _ := e.decoded()
		results <- p.ID
	}
	go call()
	<-l.started // load 1 runs
	go call()
	go call()
	// Both late callers must wait for a second load, which may not start
	// before the first ends.
	select {
	case <-l.started:
		t.Fatal("a second load started while the first was running")
	case <-time.After(50 * time.Millisecond):
	}
	l.release <- struct{}{}
	if id := <-results; id != 1 {
		t.Fatalf("the first caller got load %d, want 1", id)
	}
	<-l.started
	close(l.release)
	if a, b := <-results, <-results; a != 2 || b != 2 {
		t.Fatalf("the late callers got loads %d and %d, want both 2", a, b)
	}
	if n := l.calls.Load(); n != 2 {
		t.Fatalf("%d loads, want 2", n)
	}
}

// TestTokenFlightIsShared: callers with the same token share a running load
// and, for linger, a finished one; another token gets its own.
func TestTokenFlightIsShared(t *testing.T) {
	t.Parallel()
	g := flights{linger: time.Minute}
	l := newStartedLoad()
	close(l.release)
	key := flightKey{id: 1, gen: 3, token: "Tabc"}
	for range 3 {
		if _, err := g.do(context.Background(), key, l.load); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.calls.Load(); n != 1 {
		t.Fatalf("%d loads for one token, want 1", n)
	}
	key.token = "Tdef"
	if _, err := g.do(context.Background(), key, l.load); err != nil {
		t.Fatal(err)
	}
	if n := l.calls.Load(); n != 2 {
		t.Fatalf("%d loads for two tokens, want 2", n)
	}
}

// TestFailedFlightIsNotKept: an error is handed to the callers of that load
// only.
func TestFailedFlightIsNotKept(t *testing.T) {
	t.Parallel()
	g := flights{linger: time.Minute}
	var calls atomic.Int32
	fail := func() (*entry, error) { calls.Add(1); return nil, errors.New("database away") }
	key := flightKey{id: 1, token: ""}
	for range 2 {
		if _, err := g.do(context.Background(), key, fail); err == nil {
			t.Fatal("want the load's error")
		}
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d loads, want 2 (a failure is not shared with later callers)", n)
	}
}

// TestFlightCallerMayGiveUp: a caller whose context ends stops waiting; the
// load goes on for the others.
func TestFlightCallerMayGiveUp(t *testing.T) {
	t.Parallel()
	var g flights
	l := newStartedLoad()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := g.do(ctx, flightKey{id: 1}, l.load)
		done <- err
	}()
	<-l.started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	close(l.release)
}
