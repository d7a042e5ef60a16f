package main

import (
	"fmt"

	"github.com/productd/productd/chores"
	"github.com/productd/productd/db"
	"github.com/productd/productd/imagesweep"
)

// setupChores builds a.chores and registers every chore of the process with
// it, before any role starts.
//
// The River client runs in the processes with the relay role (productd all
// and productd relay; see runRelay), and River lets whichever of them leads
// schedule the periodic jobs from its own list. So every chore is registered
// here, whatever the roles, and a relay-role process always has the relay's
// own: every process that may lead schedules the same chores. Other
// processes hold the client without running it, for what only reads through
// it.
func setupChores(a *app) error {
	a.chores = chores.New(a.pool, chores.Config{StopTimeout: a.cfg.ShutdownTimeout / 10}, a.log)
	// The API's idempotency keys live in its database tables; their owner
	// registers their retention.
	if err := db.RegisterKeyRetention(a.chores, a.pool, db.KeyRetentionConfig{}, a.log); err != nil {
		return err
	}
	if a.relay != nil {
		if err := a.relay.RegisterChores(a.chores); err != nil {
			return err
		}
	}
	// The image pipeline's: images that never got a result are scheduled
	// again (through the product service every cache hears of), and
	// uploads no product owns any more are removed.
	if err := imagesweep.New(imagesweep.Config{}, a.pool, a.products, a.log).Register(a.chores); err != nil {
		return err
	}
	if err := a.originals.RegisterSweep(a.chores); err != nil {
		return err
	}
	// Registration ends here: the roles may take the client from now on.
	if _, err := a.chores.Client(); err != nil {
		return fmt.Errorf("chores: %w", err)
	}
	return nil
}
