package relay_test

import (
	"context"
	"strings"
	"testing"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/chores"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/relay"
)

// A relay's chores are registered once: a second registration on the same
// scheduler is refused, naming the relay. Without the database the relay
// statuses and the switch say what they were reading or setting.
func TestRegisteredTwiceAndWithoutTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	r := newRelay(t, pool, brokerFor(t, amqptest.URL(t), broker.Topology{}), relay.Config{}, logging.Discard())
	s := chores.New(pool, chores.Config{}, logging.Discard())
	if err := r.RegisterChores(s); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterChores(s); err == nil || !strings.HasPrefix(err.Error(), "relay: ") {
		t.Errorf("a second registration: %v, want a refusal naming the relay", err)
	}
	pool.Close()
	if _, err := relay.ReadStatuses(ctx, pool, 0); err == nil || !strings.HasPrefix(err.Error(), "read relay status: ") {
		t.Errorf("ReadStatuses on a closed pool: %v, want read relay status", err)
	}
	if _, err := relay.SetPaused(ctx, pool, true, "tester", "test"); err == nil || !strings.HasPrefix(err.Error(), "set relay paused=true: ") {
		t.Errorf("SetPaused on a closed pool: %v, want set relay paused", err)
	}
}
