package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/logging"
)

// fastRetries keeps the retry queues' delays short enough for a test.
var fastRetries = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}

func message(exchange, key, id string) broker.Message {
	return broker.Message{Exchange: exchange, RoutingKey: key, Publishing: amqp.Publishing{
		MessageId: id, ContentType: "application/json", Type: key, Body: []byte(`{"id":"` + id + `"}`),
	}}
}

// publish publishes msgs and fails t unless every one is confirmed.
func publish(t *testing.T, pub *broker.Publisher, msgs ...broker.Message) {
	t.Helper()
	for i, r := range pub.Publish(context.Background(), msgs) {
		if !r.Published() {
			t.Fatalf("message %d (%s): %v %v", i, msgs[i].Publishing.MessageId, r.Outcome, r.Err)
		}
	}
}

// await polls cond until it holds, failing t after amqptest.Timeout.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(amqptest.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]broker.Config{
		"no URL":       {},
		"bad scheme":   {URL: "http://127.0.0.1:5672/"},
		"bad topology": {URL: amqptest.DefaultURL, Topology: broker.Topology{DeliveryLimit: -1}},
	} {
		if b, err := broker.New(cfg, logging.Discard()); err == nil {
			_ = b.Close()
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

func TestEventsReachTheWorkQueueAndUnroutableOnesAreReturned(t *testing.T) {
	t.Parallel()
	b := amqptest.NewBroker(t, broker.Config{}, logging.Discard())
	topo := b.Topology()
	pub := b.NewPublisher(0)
	defer pub.Close()

	var msgs []broker.Message
	for i, key := range topo.RoutingKeys {
		msgs = append(msgs, message(topo.Exchange, key, fmt.Sprintf("m%d", i)))
	}
	msgs = append(msgs, message(topo.Exchange, "product.unknown", "lost"))
	results := pub.Publish(context.Background(), msgs)
	for i, r := range results[:3] {
		if r.Outcome != broker.Confirmed || r.Err != nil || !r.Published() {
			t.Errorf("message %d: %v %v", i, r.Outcome, r.Err)
		}
	}
	var ret *broker.ReturnedError
	last := results[3]
	if last.Outcome != broker.Returned || last.Published() || !errors.As(last.Err, &ret) || ret.ReplyCode != amqp.NoRoute {
		t.Errorf("unroutable message: %v %v", last.Outcome, last.Err)
	}

	got := amqptest.Drain(t, topo.WorkQueue)
	if counts := amqptest.CountIDs(got); len(got) != 3 || counts["m0"] != 1 || counts["m1"] != 1 || counts["m2"] != 1 {
		t.Fatalf("work queue holds %v", counts)
	}
	for _, d := range got {
		if d.DeliveryMode != amqp.Persistent || d.ContentType != "application/json" || d.Type != d.RoutingKey {
			t.Errorf("delivery %s: mode %d, content type %q, type %q, key %q", d.MessageId, d.DeliveryMode, d.ContentType, d.Type, d.RoutingKey)
		}
	}
}

func TestPublisherGivesMessagesWithoutIDAnID(t *testing.T) {
	t.Parallel()
	b := amqptest.NewBroker(t, broker.Config{}, logging.Discard())
	topo := b.Topology()
	pub := b.NewPublisher(0)
	defer pub.Close()
	m := message(topo.Exchange, topo.RoutingKeys[0], "")
	publish(t, pub, m, m)
	got := amqptest.Drain(t, topo.WorkQueue)
	if len(got) != 2 || got[0].MessageId == "" || got[0].MessageId == got[1].MessageId {
		t.Fatalf("message ids %v", amqptest.CountIDs(got))
	}
	if r := pub.Publish(context.Background(), nil); len(r) != 0 {
		t.Errorf("empty batch gave %d results", len(r))
	}
}

func TestPublisherReportsNacks(t *testing.T) {
	t.Parallel()
	b := amqptest.NewBroker(t, broker.Config{}, logging.Discard())
	topo := b.Topology()

	// A queue that is always full and refuses publishes makes the broker
	// nack every message routed to it.
	amqptest.BindRefusingQueue(t, topo.Exchange, "product.full")

	pub := b.NewPublisher(0)
	defer pub.Close()
	results := pub.Publish(context.Background(), []broker.Message{
		message(topo.Exchange, "product.full", "refused"),
		message(topo.Exchange, topo.RoutingKeys[0], "ok"),
	})
	if r := results[0]; r.Outcome != broker.Nacked || !errors.Is(r.Err, broker.ErrNacked) || r.Published() {
		t.Errorf("message to a full queue: %v %v", r.Outcome, r.Err)
	}
	if r := results[1]; r.Outcome != broker.Confirmed {
		t.Errorf("message beside it: %v %v", r.Outcome, r.Err)
	}
}

func TestPublisherReportsUnknownWhenTheConnectionDiesBeforeTheConfirms(t *testing.T) {
	t.Parallel()
	proxy := amqptest.NewProxy(t)
	b := amqptest.NewBroker(t, broker.Config{URL: proxy.URL()}, logging.Discard())
	topo := b.Topology()
	pub := b.NewPublisher(0)
	defer pub.Close()
	if err := pub.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Nothing comes back from the broker, and the connection is cut.
	proxy.Blackhole("mute")

	msgs := []broker.Message{message(topo.Exchange, topo.RoutingKeys[0], "a"), message(topo.Exchange, topo.RoutingKeys[0], "b")}
	done := make(chan []broker.Result)
	go func() { done <- pub.Publish(context.Background(), msgs) }()
	// Both messages are in the queue, their confirms still on the way.
	await(t, "the batch to reach the queue", func() bool { return amqptest.Depth(t, topo.WorkQueue) == 2 })
	proxy.Cut()
	for i, r := range <-done {
		if r.Outcome != broker.Unknown || !errors.Is(r.Err, broker.ErrUnconfirmed) || r.Published() {
			t.Errorf("message %d: %v %v", i, r.Outcome, r.Err)
		}
	}
}

func TestPublisherTimesOutAndStartsAFreshChannel(t *testing.T) {
	t.Parallel()
	proxy := amqptest.NewProxy(t)
	b := amqptest.NewBroker(t, broker.Config{URL: proxy.URL()}, logging.Discard())
	topo := b.Topology()
	// The confirm timeout bounds the second batch too, which opens a fresh
	// channel and waits for its confirmation: it leaves room for a loaded
	// machine. The first batch's confirmation is held back far longer, so
	// that it can only time out.
	pub := b.NewPublisher(5 * time.Second)
	defer pub.Close()
	if err := pub.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	proxy.AddLatency("slow", 600_000)
	r := pub.Publish(context.Background(), []broker.Message{message(topo.Exchange, topo.RoutingKeys[0], "late")})
	if r[0].Outcome != broker.TimedOut || !errors.Is(r[0].Err, broker.ErrUnconfirmed) || !r[0].Unanswered() {
		t.Fatalf("late confirm: %v %v", r[0].Outcome, r[0].Err)
	}
	proxy.RemoveToxic("slow")
	// The late message may arrive; a new batch is confirmed on a new channel.
	publish(t, pub, message(topo.Exchange, topo.RoutingKeys[0], "next"))
}

func TestBrokerRecoversAfterTheConnectionIsCutAndLogsEveryChange(t *testing.T) {
	t.Parallel()
	log, hook := logtest.NewNullLogger()
	proxy := amqptest.NewProxy(t)
	b := amqptest.NewBroker(t, broker.Config{URL: proxy.URL(), ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}, log)
	topo := b.Topology()
	pub := b.NewPublisher(0)
	defer pub.Close()
	publish(t, pub, message(topo.Exchange, topo.RoutingKeys[0], "before"))
	changed := b.Changed()

	proxy.Cut()
	<-changed
	await(t, "the broker to notice the cut", func() bool { return !b.Connected() })
	if b.State() != broker.StateConnecting {
		t.Errorf("state while cut = %s", b.State())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if _, err := b.Channel(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Channel while cut: %v", err)
	}
	cancel()
	r := pub.Publish(ctx, []broker.Message{message(topo.Exchange, topo.RoutingKeys[0], "during")})
	if r[0].Outcome != broker.Unknown {
		t.Errorf("publish while cut: %v", r[0].Outcome)
	}
	await(t, "a failed reconnection attempt", func() bool { return hasLog(hook, "broker: connection attempt failed") })

	proxy.Restore()
	if err := b.WaitConnected(context.Background()); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, message(topo.Exchange, topo.RoutingKeys[0], "after"))
	if counts := amqptest.CountIDs(amqptest.Drain(t, topo.WorkQueue)); counts["before"] != 1 || counts["after"] != 1 || counts["during"] != 0 {
		t.Errorf("work queue holds %v", counts)
	}
	if s := b.Stats(); s.Connects != 2 || s.Losses != 1 || s.State != broker.StateConnected {
		t.Errorf("stats = %+v", s)
	}
	for _, msg := range []string{"broker: connected", "broker: connection lost, reconnecting", "broker: recovered"} {
		if !hasLog(hook, msg) {
			t.Errorf("no log line %q", msg)
		}
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitConnected(context.Background()); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("WaitConnected after Close: %v", err)
	}
	if b.State() != broker.StateClosed || !hasLog(hook, "broker: closed") {
		t.Errorf("state after Close = %s", b.State())
	}
}

func TestBrokerCloseWhileUnreachable(t *testing.T) {
	t.Parallel()
	proxy := amqptest.NewProxy(t)
	proxy.Cut()
	b, err := broker.New(broker.Config{URL: proxy.URL(), Topology: broker.Topology{Prefix: amqptest.Prefix(t)}}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.WaitConnected(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitConnected with the broker away: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Channel(context.Background()); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Channel after Close: %v", err)
	}
}

func TestBrokerRefusesAConflictingTopologyLoudly(t *testing.T) {
	t.Parallel()
	log, hook := logtest.NewNullLogger()
	prefix := amqptest.Prefix(t)
	// The work queue already exists as a classic queue.
	ch := amqptest.Channel(t)
	if _, err := ch.QueueDeclare(prefix+broker.DefaultWorkQueue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { amqptest.DeleteQueues(t, prefix+broker.DefaultWorkQueue) })
	b, err := broker.New(broker.Config{URL: amqptest.URL(t), Topology: broker.Topology{Prefix: prefix}}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = b.Close()
		topo := b.Topology()
		amqptest.DeleteTopology(t, topo)
	})
	await(t, "the declaration to fail", func() bool {
		for _, e := range hook.AllEntries() {
			if err, ok := e.Data[logrus.ErrorKey].(error); ok && strings.Contains(err.Error(), "PRECONDITION_FAILED") {
				return true
			}
		}
		return false
	})
	if b.Connected() {
		t.Error("broker connected despite a topology it could not declare")
	}
}

func hasLog(hook *logtest.Hook, msg string) bool {
	for _, e := range hook.AllEntries() {
		if e.Message == msg {
			return true
		}
	}
	return false
}
