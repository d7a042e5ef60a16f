package broker_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/logging"
)

func TestSplitURLsReadsOneURLOrAList(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string][]string{
		"amqp://a/":                        {"amqp://a/"},
		"amqp://a/, amqp://b/,":            {"amqp://a/", "amqp://b/"},
		" amqp://a/ ,,amqp://b/,amqp://c/": {"amqp://a/", "amqp://b/", "amqp://c/"},
		"":                                 nil,
	} {
		if got := broker.SplitURLs(raw); !slices.Equal(got, want) {
			t.Errorf("SplitURLs(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestNewRefusesABadNodeInTheListWithoutItsPassword(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		amqptest.DefaultURL + ",http://guest:hunter2@127.0.0.1:5673/",
		" , ",
	} {
		b, err := broker.New(broker.Config{URL: raw}, logging.Discard())
		if err == nil {
			_ = b.Close()
			t.Errorf("New accepted URL %q", raw)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows a password: %v", err)
		}
	}
}

// A cluster client tries every node: a node that refuses is passed over, and
// when the node in use goes away the broker reconnects through another.
func TestBrokerMovesToAnotherNodeWhenItsNodeGoesAway(t *testing.T) {
	t.Parallel()
	log, hook := logtest.NewNullLogger()
	first, second := amqptest.NewProxy(t), amqptest.NewProxy(t)
	refusing := "amqp://guest:hunter2@127.0.0.1:1/"
	b := amqptest.NewBroker(t, broker.Config{
		URL:          refusing + "," + first.URL() + "," + second.URL(),
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
	}, log)
	topo := b.Topology()
	pub := b.NewPublisher(0)
	defer pub.Close()
	publish(t, pub, message(topo.Exchange, topo.RoutingKeys[0], "through the first node that answers"))

	// The first dial passed over the refusing node and took the first proxy;
	// a reconnection starts with the node after the one lost.
	lose := func(node *amqptest.Proxy, id string) {
		t.Helper()
		changed := b.Changed()
		node.Cut()
		select {
		case <-changed:
		case <-time.After(amqptest.Timeout):
			t.Fatalf("cutting a node left the broker connected: it was not on that node")
		}
		await(t, "the broker to reconnect through another node", b.Connected)
		publish(t, pub, message(topo.Exchange, topo.RoutingKeys[0], id))
	}
	lose(first, "through the second node")
	first.Restore()
	lose(second, "through the first node again")
	if s := b.Stats(); s.Losses != 2 || s.Connects != 3 {
		t.Errorf("stats %+v, want 2 losses and 3 connections", s)
	}
	for _, e := range hook.AllEntries() {
		if line, _ := e.String(); strings.Contains(line, "hunter2") {
			t.Fatalf("a log line shows a password: %s", line)
		}
	}
	if got := amqptest.Depth(t, topo.WorkQueue); got != 3 {
		t.Errorf("the work queue holds %d messages, want 3", got)
	}
}
