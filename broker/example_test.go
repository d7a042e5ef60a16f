package broker_test

import (
	"fmt"
	"log"
	"time"

	"github.com/productd/productd/broker"
)

// The zero Topology is productd's: Resolve fills in every name and limit.
// Prefix sets apart the names of a test or of a second deployment on the
// same broker.
func ExampleTopology_Resolve() {
	topo, err := broker.Topology{Prefix: "staging."}.Resolve()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exchanges:", topo.Exchanges())
	fmt.Println("queues:", topo.Queues())
	fmt.Println("work queue bound to:", topo.RoutingKeys)
	fmt.Println("delivery limit:", topo.DeliveryLimit)
	// Output:
	// exchanges: [staging.productd.events staging.productd.retry staging.productd.dlx]
	// queues: [staging.productd.images staging.productd.images.retry.1s staging.productd.images.retry.5s staging.productd.images.retry.30s staging.productd.images.retry.2m staging.productd.images.retry.10m staging.productd.images.parking]
	// work queue bound to: [product.created product.images_changed product.deleted]
	// delivery limit: 10
}

// A message that failed transiently for the n-th time is published to the
// retry exchange with the n-th delay's key; past the last delay it belongs
// in the parking lot.
func ExampleTopology_RetryRoutingKey() {
	topo, err := broker.Topology{RetryDelays: []time.Duration{500 * time.Millisecond, 30 * time.Second}}.Resolve()
	if err != nil {
		log.Fatal(err)
	}
	for attempt := 1; attempt <= 3; attempt++ {
		key, ok := topo.RetryRoutingKey(attempt)
		fmt.Printf("attempt %d: %q %v\n", attempt, key, ok)
	}
	fmt.Println(topo.Routes(topo.RetryExchange, "productd.images.retry.30s"), topo.Routes(topo.Exchange, "product.renamed"))
	// Output:
	// attempt 1: "productd.images.retry.500ms" true
	// attempt 2: "productd.images.retry.30s" true
	// attempt 3: "" false
	// true false
}
