package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/productd/productd/api"
	"github.com/productd/productd/config"
	"github.com/productd/productd/db"
	"github.com/productd/productd/ops"
	"github.com/productd/productd/telemetry"
)

const opsUsage = `usage: productd ops [--json] COMMAND
  status                              the flow, the outbox, the relays and the pipeline
  dead list [--type T] [--product ID] [--error TEXT] [--before ROW]
  dead requeue ROW | --all | [--type T] [--product ID] [--error TEXT]
  dead discard ROW
  parking replay [--limit N]             parked image events re-schedule their product
  product rerun ID [REASON...]          schedule a product's images again
  relay pause REASON...
  relay resume [REASON...]
  product ID                          why is this product not done?
`

// errUsage is a command line that does not parse; run prints the usage.
var errUsage = errors.New("bad usage")

// opsCommand runs `productd ops ...` against the database and broker of cfg,
// printing text, or JSON with --json. Every action is recorded with the
// operating-system user as its actor.
func opsCommand(ctx context.Context, cfg *config.Config, log *logrus.Logger, args []string, out io.Writer) error {
	asJSON := false
	var rest []string
	for _, a := range args {
		if a == "--json" || a == "-json" {
			asJSON = true
		} else {
			rest = append(rest, a)
		}
	}
	if len(rest) == 0 {
		return errUsage
	}
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()
	// Metrics are kept but not served, and nothing is traced: the command
	// only needs what the roles' wiring expects.
	tel, err := telemetry.New(ctx, telemetry.Config{Log: log})
	if err != nil {
		return err
	}
	a := &app{cfg: cfg, log: log, pool: pool, products: db.NewProductService(pool), checks: &api.Checks{}, tel: tel}
	// Re-running a product's images changes it: through the cache, as the
	// API would, so that no process serves it as it was.
	cacheCtx, stopCache := context.WithCancel(ctx)
	defer stopCache()
	if err := setupCache(cacheCtx, a, false); err != nil {
		return err
	}
	if closer, ok := a.products.(io.Closer); ok {
		defer closer.Close()
	}
	console, closeConsole, err := newConsole(a)
	if err != nil {
		return err
	}
	defer closeConsole()
	// The parking log and replays need the broker; give it a moment.
	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_ = console.WaitBroker(waitCtx)
	cancel()

	c := opsCLI{ctx: ctx, console: console, out: out, json: asJSON, actor: cliActor()}
	return c.run(rest)
}

type opsCLI struct {
	ctx     context.Context
	console *ops.Console
	out     io.Writer
	json    bool
	actor   string
}

func (c opsCLI) run(args []string) error {
	cmd := strings.Join(args[:min(2, len(args))], " ")
	switch {
	case args[0] == "status":
		return c.show(c.console.Overview(c.ctx))
	case cmd == "product rerun" && len(args) > 2:
		id, err := strconv.ParseInt(args[2], 10, 64)
		if err != nil {
			return errUsage
		}
		reason := strings.Join(args[3:], " ")
		if reason == "" {
			reason = "re-run from productd ops"
		}
		return c.done(fmt.Sprintf("re-running the images of product %d", id), c.console.RerunImages(c.ctx, c.actor, id, reason))
	case args[0] == "product" && len(args) == 2:
		id, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return errUsage
		}
		return c.show(c.console.Product(c.ctx, id))
	case cmd == "dead list":
		f, before, _, rest, err := deadFlags(args[2:])
		if err != nil || len(rest) > 0 {
			return errUsage
		}
		return c.show(c.console.Dead(c.ctx, f, before))
	case cmd == "dead requeue":
		f, _, all, rest, err := deadFlags(args[2:])
		if err != nil {
			return errUsage
		}
		if len(rest) == 1 && f.IsZero() && !all {
			id, err := strconv.ParseInt(rest[0], 10, 64)
			if err != nil {
				return errUsage
			}
			return c.done(fmt.Sprintf("requeued outbox row %d", id), c.console.RequeueDead(c.ctx, c.actor, id))
		}
		if len(rest) > 0 || (f.IsZero() && !all) {
			return errUsage
		}
		n, err := c.console.RequeueDeadMatching(c.ctx, c.actor, f)
		return c.done(fmt.Sprintf("requeued %d dead rows", n), err)
	case cmd == "dead discard" && len(args) == 3:
		id, err := strconv.ParseInt(args[2], 10, 64)
		if err != nil {
			return errUsage
		}
		return c.done(fmt.Sprintf("discarded outbox row %d", id), c.console.DiscardDead(c.ctx, c.actor, id))
	case cmd == "parking replay":
		fs := flag.NewFlagSet("parking replay", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		limit := fs.Int("limit", 1000, "")
		if fs.Parse(args[2:]) != nil || fs.NArg() > 0 {
			return errUsage
		}
		n, err := c.console.ReplayParking(c.ctx, c.actor, *limit)
		return c.done(fmt.Sprintf("replayed %d parked messages", n), err)
	case cmd == "relay pause" && len(args) > 2:
		return c.done("relay paused", c.console.PauseRelay(c.ctx, c.actor, strings.Join(args[2:], " ")))
	case cmd == "relay resume":
		return c.done("relay resumed", c.console.ResumeRelay(c.ctx, c.actor, strings.Join(args[2:], " ")))
	}
	return errUsage
}

// deadFlags parses a dead-row filter and the words left after it.
func deadFlags(args []string) (f ops.DeadFilter, before int64, all bool, rest []string, err error) {
	fs := flag.NewFlagSet("dead", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.EventType, "type", "", "")
	fs.Int64Var(&f.ProductID, "product", 0, "")
	fs.StringVar(&f.ErrorContains, "error", "", "")
	fs.Int64Var(&before, "before", 0, "")
	fs.BoolVar(&all, "all", false, "")
	err = fs.Parse(args)
	return f, before, all, fs.Args(), err
}

// show prints what a read returned: JSON, or text for a person.
func (c opsCLI) show(v any, err error) error {
	if err != nil {
		return err
	}
	if c.json {
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	switch v := v.(type) {
	case ops.Overview:
		printOverview(w, v)
	case ops.DeadPage:
		printDead(w, v)
	case ops.Story:
		printStory(w, v)
	}
	return w.Flush()
}

// done prints what an action did, or returns its error.
func (c opsCLI) done(what string, err error) error {
	if err != nil {
		return err
	}
	if c.json {
		return json.NewEncoder(c.out).Encode(map[string]string{"done": what})
	}
	_, err = fmt.Fprintln(c.out, what)
	return err
}

func printOverview(w io.Writer, o ops.Overview) {
	fmt.Fprintf(w, "flow at %s (~ marks an estimate)\n", o.At.Format(time.RFC3339))
	fmt.Fprintln(w, "stage\thealth\trate/s\tbacklog\toldest\tnote")
	for _, s := range o.Flow.Stages {
		rate, backlog, oldest := "-", "-", "-"
		if s.Rate != nil {
			rate = fmt.Sprintf("%s%.2f", tilde(s.Rate.Estimate), s.Rate.PerSecond)
		}
		if s.Backlog != nil {
			backlog = fmt.Sprintf("%s%d", tilde(s.Backlog.Estimate), s.Backlog.N)
		}
		if s.OldestSeconds != nil {
			oldest = (time.Duration(*s.OldestSeconds * float64(time.Second))).Round(time.Millisecond).String()
		}
		pile := ""
		if s.PilingUp {
			pile = " (piling up)"
		}
		fmt.Fprintf(w, "%s\t%s%s\t%s\t%s\t%s\t%s\n", s.Name, s.Health, pile, rate, backlog, oldest, s.Note)
	}
	r := o.Relays
	state := "running"
	if r.Paused {
		state = fmt.Sprintf("PAUSED by %s at %s: %s", r.ChangedBy, r.ChangedAt.Format(time.RFC3339), r.Reason)
	}
	fmt.Fprintf(w, "\nrelay: %s\n", state)
	for _, p := range r.Processes {
		if !p.Stale {
			fmt.Fprintf(w, "  %s\t%s since %s\t%s\n", p.Process, p.State, p.Since.Format(time.RFC3339), p.Reason)
		}
	}
	fmt.Fprintf(w, "\noutbox: %d pending, %d dead, %d retrying, oldest pending %.1fs\n",
		o.Outbox.Pending.N, o.Outbox.Dead.N, o.Outbox.Retrying.N, o.Outbox.OldestPendingSeconds)
	fmt.Fprintln(w, "\nqueue\tmessages\tready\tconsumers")
	for _, q := range o.Pipeline.Queues {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\n", q.Name, q.Messages, q.Ready, q.Consumers)
	}
}

func printDead(w io.Writer, p ops.DeadPage) {
	fmt.Fprintln(w, "row\tevent\tproduct\tattempts\tdied\tlast error")
	for _, d := range p.Rows {
		fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%s\t%s\n", d.ID, d.EventType, d.ProductID, d.Attempts, d.DiedAt.Format(time.RFC3339), d.LastError)
	}
	if p.Next != 0 {
		fmt.Fprintf(w, "more: --before %d\n", p.Next)
	}
}

func printStory(w io.Writer, s ops.Story) {
	fmt.Fprintf(w, "product %d: %s\n", s.ProductID, s.Why)
	if s.Where != "" {
		fmt.Fprintf(w, "its message: %s\n", s.Where)
	}
	fmt.Fprintln(w, "row\tevent\tversion\tstatus\tattempts\tlast error")
	for _, e := range s.Events {
		fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%d\t%s\n", e.RowID, e.EventType, e.ProductVersion, e.Status, e.Attempts, e.LastError)
	}
}

func tilde(estimate bool) string {
	if estimate {
		return "~"
	}
	return ""
}

// cliActor names whoever runs the command, for the record of actions.
func cliActor() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s (productd ops)", name, host)
}
