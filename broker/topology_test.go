package broker_test

import (
	"slices"
	"testing"
	"time"

	"github.com/productd/productd/broker"
)

func TestTopologyResolveFillsDefaultsUnderThePrefix(t *testing.T) {
	t.Parallel()
	topo, err := broker.Topology{Prefix: "x."}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"exchange": "x.productd.events", "work": "x.productd.images", "retry": "x.productd.retry",
		"dlx": "x.productd.dlx", "parking": "x.productd.images.parking",
	}
	got := map[string]string{
		"exchange": topo.Exchange, "work": topo.WorkQueue, "retry": topo.RetryExchange,
		"dlx": topo.DeadLetterExchange, "parking": topo.ParkingQueue,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if topo.Prefix != "" || topo.DeliveryLimit != 10 || len(topo.RoutingKeys) != 3 {
		t.Errorf("resolved topology = %+v", topo)
	}
	again, err := topo.Resolve()
	if err != nil || again.WorkQueue != topo.WorkQueue {
		t.Errorf("resolving twice changed the names: %q, %v", again.WorkQueue, err)
	}
	wantQueues := []string{
		"x.productd.images",
		"x.productd.images.retry.1s", "x.productd.images.retry.5s", "x.productd.images.retry.30s",
		"x.productd.images.retry.2m", "x.productd.images.retry.10m",
		"x.productd.images.parking",
	}
	if q := topo.Queues(); !slices.Equal(q, wantQueues) {
		t.Errorf("Queues() = %q, want %q", q, wantQueues)
	}
	if e := topo.Exchanges(); !slices.Equal(e, []string{"x.productd.events", "x.productd.retry", "x.productd.dlx"}) {
		t.Errorf("Exchanges() = %q", e)
	}
}

func TestTopologyResolveKeepsGivenValues(t *testing.T) {
	t.Parallel()
	topo, err := broker.Topology{
		WorkQueue: "w", RoutingKeys: []string{"a"}, DeliveryLimit: 3,
		RetryDelays: []time.Duration{1500 * time.Millisecond, time.Hour},
	}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if topo.WorkQueue != "w" || !slices.Equal(topo.RoutingKeys, []string{"a"}) || topo.DeliveryLimit != 3 {
		t.Errorf("resolved topology = %+v", topo)
	}
	if q := topo.Queues(); !slices.Equal(q, []string{"w", "w.retry.1500ms", "w.retry.1h", "productd.images.parking"}) {
		t.Errorf("Queues() = %q", q)
	}
}

func TestTopologyResolveRefusesBadLimits(t *testing.T) {
	t.Parallel()
	for name, topo := range map[string]broker.Topology{
		"negative delivery limit": {DeliveryLimit: -1},
		"sub-millisecond delay":   {RetryDelays: []time.Duration{time.Microsecond}},
		"duplicate delay":         {RetryDelays: []time.Duration{time.Second, 1000 * time.Millisecond}},
	} {
		if _, err := topo.Resolve(); err == nil {
			t.Errorf("%s: Resolve accepted %+v", name, topo)
		}
	}
}

func TestRetryRoutingKeyGrowsThenRunsOut(t *testing.T) {
	t.Parallel()
	topo, err := broker.Topology{}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for attempt := 0; attempt <= 6; attempt++ {
		key, ok := topo.RetryRoutingKey(attempt)
		if ok != (attempt >= 1 && attempt <= 5) {
			t.Errorf("attempt %d: ok = %v", attempt, ok)
		}
		if ok {
			keys = append(keys, key)
		}
	}
	want := []string{
		"productd.images.retry.1s", "productd.images.retry.5s", "productd.images.retry.30s",
		"productd.images.retry.2m", "productd.images.retry.10m",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
}

func TestRetryQueueNamesFallBackToGoDurations(t *testing.T) {
	t.Parallel()
	topo, err := broker.Topology{RetryDelays: []time.Duration{1500 * time.Microsecond}}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if key, ok := topo.RetryRoutingKey(1); !ok || key != "productd.images.retry.1.5ms" {
		t.Errorf("retry key = %q, %v", key, ok)
	}
}

func TestTopologyRoutesWhatItBinds(t *testing.T) {
	t.Parallel()
	topo, err := broker.Topology{Prefix: "x."}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	retryKey, _ := topo.RetryRoutingKey(1)
	for _, c := range []struct {
		exchange, key string
		want          bool
	}{
		{topo.Exchange, topo.RoutingKeys[0], true},
		{topo.Exchange, "product.unknown", false},
		{topo.RetryExchange, retryKey, true},
		{topo.RetryExchange, topo.WorkQueue, false},
		{topo.DeadLetterExchange, "anything", true},
		{"", topo.ParkingQueue, true},
		{"", "somebody.else", false},
		{"other.exchange", topo.RoutingKeys[0], false},
	} {
		if got := topo.Routes(c.exchange, c.key); got != c.want {
			t.Errorf("Routes(%q, %q) = %v, want %v", c.exchange, c.key, got, c.want)
		}
	}
}
