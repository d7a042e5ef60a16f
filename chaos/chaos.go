// Package chaos is the suite behind `make chaos`: it runs productd as
// separate processes (one api, two relays, two workers) under the load
// generator, puts them through one fault at a time, waits for the system to
// settle, audits it, and reports a row per scenario: products created, lost,
// duplicated, wrongly statused, the time to recover and the longest create
// during the fault.
//
// Every service it takes away is a private one it started itself (see
// internal/sandbox): a Postgres cluster, RabbitMQ nodes, a Redis and a MinIO
// in a scratch directory on ports of their own, with toxiproxy between the
// processes and the broker. The shared services on the default ports, which
// other tests and people use, are never touched, so the suite runs beside
// them.
package chaos

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/productd/productd/internal/sandbox"
)

// Config is a run's settings. Binary is required; every other zero field
// takes the default in its comment.
type Config struct {
	// Binary is the productd binary the fleet runs.
	Binary string

	// Root is where the scratch directory goes. Zero means os.TempDir().
	Root string

	// LogDir, when set, receives every scenario's process logs.
	LogDir string

	// Scenarios names the scenarios to run, in the suite's order. Zero
	// means every scenario, or ShortScenarios with Short.
	Scenarios []string

	// Short runs the short suite's sizes: DefaultShortProducts products
	// and DefaultShortOutage outages.
	Short bool

	// Products is how many products each scenario creates. Zero means
	// DefaultProducts (2,000), or DefaultShortProducts (300) with Short.
	Products int

	// Rate is how many products a second the load generator creates. Zero
	// means DefaultRate (20).
	Rate float64

	// Outage is how long a service stays away. Zero means DefaultOutage
	// (30 s), or DefaultShortOutage (10 s) with Short.
	Outage time.Duration

	// SettleFor bounds the wait, from the last create on, for every product
	// to end and the outbox and the queues to empty. Zero means
	// DefaultSettleFor (15 min): the image worker's retries of one message
	// span about 13 minutes.
	SettleFor time.Duration

	// Out receives the progress of the run and the table.
	Out io.Writer

	// Log receives the sandbox's messages.
	Log *logrus.Logger
}

// Defaults of Config.
const (
	DefaultProducts      = 2000
	DefaultShortProducts = 300
	DefaultRate          = 20
	DefaultOutage        = 30 * time.Second
	DefaultShortOutage   = 10 * time.Second
	DefaultSettleFor     = 15 * time.Minute
)

func (c Config) withDefaults() Config {
	products, outage := DefaultProducts, DefaultOutage
	if c.Short {
		products, outage = DefaultShortProducts, DefaultShortOutage
		if len(c.Scenarios) == 0 {
			c.Scenarios = ShortScenarios
		}
	}
	c.Products = cmp.Or(c.Products, products)
	c.Outage = cmp.Or(c.Outage, outage)
	c.Rate = cmp.Or(c.Rate, DefaultRate)
	c.SettleFor = cmp.Or(c.SettleFor, DefaultSettleFor)
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Log == nil {
		c.Log = logrus.New()
		c.Log.SetOutput(io.Discard)
	}
	return c
}

// selected returns the scenarios cfg names, in the suite's order, or an
// error naming one that does not exist.
func (c Config) selected() ([]Scenario, error) {
	all := Scenarios()
	if len(c.Scenarios) == 0 {
		return all, nil
	}
	var out []Scenario
	for _, s := range all {
		if slices.Contains(c.Scenarios, s.Name) {
			out = append(out, s)
		}
	}
	for _, name := range c.Scenarios {
		if !slices.ContainsFunc(all, func(s Scenario) bool { return s.Name == name }) {
			return nil, fmt.Errorf("chaos: no scenario %q", name)
		}
	}
	return out, nil
}

// Run starts the private services, runs the scenarios one at a time, and
// returns their table. It fails only when the run itself cannot proceed
// (bad settings, a service that does not start); a scenario that goes wrong
// is a failing row. Whatever happens, everything it started is gone when it
// returns.
func Run(ctx context.Context, cfg Config) (table *Table, err error) {
	cfg = cfg.withDefaults()
	if cfg.Binary == "" {
		return nil, errors.New("chaos: no productd binary")
	}
	scenarios, err := cfg.selected()
	if err != nil {
		return nil, err
	}
	started := time.Now()
	table = &Table{Started: started}
	// A run that could not start returns no table, and the error the
	// caller must see, not a panic here.
	defer func() {
		if table != nil {
			table.Duration = time.Since(started)
		}
	}()
	say := func(format string, args ...any) {
		fmt.Fprintf(cfg.Out, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	dir, err := sandbox.Open(cfg.Root, cfg.Log)
	if err != nil {
		return nil, err
	}
	defer func() {
		// The scenarios' objects, databases and queues are tens of
		// thousands of files: removing them takes minutes on a busy
		// machine, which would otherwise look like a hang.
		say("stopping the private services and removing %s", dir.Path())
		if cerr := dir.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("chaos: clean up: %w", cerr)
		}
	}()
	say("starting private Postgres, Redis, MinIO and RabbitMQ under %s", dir.Path())
	svc, err := startServices(ctx, dir, cfg.Binary, randomID())
	if err != nil {
		return nil, fmt.Errorf("chaos: start the services: %w", err)
	}
	defer svc.close()
	for _, sc := range scenarios {
		if ctx.Err() != nil {
			return table, ctx.Err()
		}
		row := runScenario(ctx, cfg, svc, sc, say)
		table.Rows = append(table.Rows, row)
		verdict := "pass"
		if !row.Pass() {
			verdict = fmt.Sprintf("FAIL %v", row.Problems)
		}
		say("%s: %d created, %d lost, %d duplicated, %d wrong status, recovered in %s, audit %s: %s",
			row.Scenario, row.Created, row.Lost, row.Duplicated, row.WrongStatus, seconds(row.Recovery), row.Audit, verdict)
	}
	return table, nil
}
