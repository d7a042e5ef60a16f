package outbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/outbox"
)

// Wakes in a burst fold into one notification; those that come during the
// interval after it wait for its end, as one.
func TestNotifierFoldsWakesIntoOneNotification(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	conn := listen(t, pool)
	n := outbox.NewNotifier(pool, outbox.NotifierConfig{Interval: time.Hour})
	t.Cleanup(n.Start(context.Background()))
	for range 100 {
		n.Wake()
	}
	awaitNotification(t, conn)
	for range 100 {
		n.Wake()
	}
	awaitCondition(t, "the Wakes during the interval to fold into one pending", func() bool { return outbox.Pending(n) })
	awaitCondition(t, "the first notification to be counted", func() bool { return n.Sent() >= 1 })
	if sent := n.Sent(); sent != 1 {
		t.Errorf("sent %d notifications within the interval, want 1", sent)
	}
}

// After the interval, the next Wake is sent too.
func TestNotifierSendsAgainAfterTheInterval(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	conn := listen(t, pool)
	n := outbox.NewNotifier(pool, outbox.NotifierConfig{Interval: time.Millisecond})
	t.Cleanup(n.Start(context.Background()))
	n.Wake()
	awaitNotification(t, conn)
	n.Wake()
	awaitNotification(t, conn)
	awaitCondition(t, "two notifications to be counted", func() bool { return n.Sent() == 2 })
}

// A notification that fails is reported and lost; the Notifier goes on.
func TestNotifierReportsFailures(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	errs := make(chan error, 2)
	n := outbox.NewNotifier(pool, outbox.NotifierConfig{Interval: time.Millisecond, OnError: func(err error) { errs <- err }})
	t.Cleanup(n.Start(context.Background()))
	pool.Close()
	n.Wake()
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "notify relays on "+outbox.NotifyChannel) {
			t.Errorf("error %q does not say what failed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no failure reported")
	}
	if n.Sent() != 0 {
		t.Errorf("sent %d notifications on a closed pool", n.Sent())
	}
}

// awaitCondition polls cond until it holds, failing t after 10 s.
func awaitCondition(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
