package outbox_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/outbox"
)

// TestSplitPayload joins the pieces around an id and a version as the
// create statement does, and expects the event Enqueue would have written,
// even when an image URL holds the very keys the split looks for.
func TestSplitPayload(t *testing.T) {
	images := []string{`https://example.com/a.jpg?q="product_id":0,"product_version":0`}
	ev, err := outbox.NewEvent(productd.EventProductCreated, 0, 0, images)
	if err != nil {
		t.Fatal(err)
	}
	before, between, after, err := outbox.SplitPayload(ev)
	if err != nil {
		t.Fatal(err)
	}
	joined := before + "4217" + between + "3" + after
	want := ev
	want.ProductID, want.ProductVersion = 4217, 3
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if joined != string(wantJSON) {
		t.Errorf("joined payload\n%s\nwant\n%s", joined, wantJSON)
	}
	var got productd.Event
	if err := json.Unmarshal([]byte(joined), &got); err != nil {
		t.Fatalf("joined payload %s: %v", joined, err)
	}
	if !reflect.DeepEqual(got.Images, images) || got.ProductID != 4217 || got.ProductVersion != 3 {
		t.Errorf("decoded %+v", got)
	}

	ev.ProductID = 1
	if _, _, _, err := outbox.SplitPayload(ev); err == nil {
		t.Error("an event with its product id set was split")
	}
}
