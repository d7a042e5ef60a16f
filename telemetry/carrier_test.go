package telemetry

import (
	"slices"
	"testing"
)

// The carrier lists every header a propagator may read, whatever its type:
// a baggage or vendor propagator ranges over the keys.
func TestAMQPCarrierListsEveryHeader(t *testing.T) {
	t.Parallel()
	c := amqpCarrier{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x-retries": int32(2)}
	c.Set("tracestate", "vendor=1")
	keys := c.Keys()
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"traceparent", "tracestate", "x-retries"}) {
		t.Errorf("keys %v, want every header", keys)
	}
	if got := c.Get("x-retries"); got != "" {
		t.Errorf("a header that is not a string reads %q, want nothing", got)
	}
}
