package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/outbox"
)

// An event is written in the transaction of the change it announces: it
// commits with the change or not at all. The relays publish the committed
// rows; a rolled-back transaction leaves no event behind.
func ExampleEnqueue() {
	ctx := context.Background()
	pool := dbtest.NewPool(&ex) // a program opens its pool with db.Open

	announce := func(version int64, commit bool) error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
		// The product's own change goes here, in the same tx.
		ev, err := outbox.NewEvent(productd.EventProductImagesChanged, 42, version, []string{"https://example.com/a.jpg"})
		if err != nil {
			return err
		}
		if err := outbox.Enqueue(ctx, tx, ev); err != nil {
			return err
		}
		if !commit {
			return errors.New("the change was refused")
		}
		return tx.Commit(ctx)
	}
	fmt.Println(announce(2, true))
	fmt.Println(announce(3, false))

	entries, err := outbox.ProductEntries(ctx, pool, 42, 10)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println(e.EventType, e.ProductVersion, e.Status, e.Attempts)
	}
	// Output:
	// <nil>
	// the change was refused
	// product.images_changed 2 pending 0
}

// NewEvent fills in what every event carries: the schema version, a fresh
// time-ordered id, and when it occurred.
func ExampleNewEvent() {
	ev, err := outbox.NewEvent(productd.EventProductCreated, 42, 1, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.Type, ev.ProductID, ev.ProductVersion, ev.Images, ev.SchemaVersion == productd.EventSchemaVersion, ev.ID != "")
	// Output:
	// product.created 42 1 [] true true
}
