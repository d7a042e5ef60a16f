package imageworker

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/amqptest"
)

// An event of a type this worker does not know is parked with the type
// named, not retried; a product created without images is acknowledged
// and keeps its image status none.
func TestUnknownEventTypeParkedAndNoImagesAcked(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(testConfig(), nil, hooks{})

	p, ev := h.create()
	h.publish(ev, nil)
	if out := h.outcome(ev.ID); out != "acked" {
		t.Errorf("a product without images: outcome %q, want acked", out)
	}
	if got := h.waitStatus(p.ID, productd.ImageStatusNone); got.Version != p.Version {
		t.Errorf("a product without images changed: version %d, want %d", got.Version, p.Version)
	}

	_, unknown := h.create(h.url("photo.jpg"))
	unknown.ID, unknown.Type = "unknown-type", "product.renamed"
	body, err := json.Marshal(unknown)
	if err != nil {
		t.Fatal(err)
	}
	// Routed as a created event: the bindings know no other type either.
	h.publishRaw(string(productd.EventProductCreated), unknown.ID, body, nil)
	parked := amqptest.Collect(t, h.topo.ParkingQueue, 1)
	if reason, _ := parked[0].Headers[HeaderReason].(string); parked[0].MessageId != unknown.ID || !strings.Contains(reason, `unknown event type "product.renamed"`) {
		t.Errorf("parked %s with reason %q, want %s parked naming its type", parked[0].MessageId, reason, unknown.ID)
	}
}
