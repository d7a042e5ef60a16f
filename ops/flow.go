package ops

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/productd/productd"
	"github.com/productd/productd/relay"
)

// The health of a stage.
const (
	HealthOK      = "ok"
	HealthWarn    = "warn"
	HealthDown    = "down"
	HealthUnknown = "unknown"
)

// Stage is one step of the flow from the API to a finished product.
type Stage struct {
	Name   string `json:"name"`
	Health string `json:"health"`
	// Note says what the health and figures mean now, in words.
	Note string `json:"note"`
	// Rate is the stage's throughput; nil where it has none of its own.
	Rate *Rate `json:"rate,omitempty"`
	// Backlog is what waits at the stage; OldestSeconds how long the
	// oldest of it has waited, where that is known.
	Backlog       *Count   `json:"backlog,omitempty"`
	OldestSeconds *float64 `json:"oldest_seconds,omitempty"`
	// PilingUp marks a stage where work waits longer than Config.PileUpAge
	// or would take longer than that to drain at the stage's rate.
	PilingUp bool `json:"piling_up"`
}

// Flow is the whole pipeline as one picture: API → outbox → relay → broker
// → worker → storage → done.
type Flow struct {
	Stages []Stage `json:"stages"`
	// Bottleneck names the first stage, in flow order, that is piling up;
	// empty when none is.
	Bottleneck string `json:"bottleneck"`
}

// Overview is everything the console's page shows at once.
type Overview struct {
	At       time.Time `json:"at"`
	Flow     Flow      `json:"flow"`
	Outbox   Outbox    `json:"outbox"`
	Dead     DeadPage  `json:"dead"`
	Relays   Relays    `json:"relays"`
	Pipeline Pipeline  `json:"pipeline"`
	Cache    Cache     `json:"cache"`
	// StorageError is the object storage check's failure, empty when it
	// answers (or when this process has no check).
	StorageError string   `json:"storage_error,omitempty"`
	Actions      []Action `json:"actions"`
}

// Overview reads everything at once, each part concurrently.
func (c *Console) Overview(ctx context.Context) (Overview, error) {
	o := Overview{At: time.Now().UTC(), Cache: c.Cache()}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { o.Outbox, err = c.Outbox(gctx); return })
	g.Go(func() (err error) { o.Dead, err = c.Dead(gctx, DeadFilter{}, 0); return })
	g.Go(func() (err error) { o.Relays, err = c.Relays(gctx); return })
	g.Go(func() (err error) { o.Pipeline, err = c.Pipeline(gctx); return })
	g.Go(func() (err error) { o.Actions, err = c.Actions(gctx, c.cfg.ListLimit); return })
	g.Go(func() error { o.StorageError = c.storage(gctx); return nil })
	if err := g.Wait(); err != nil {
		return Overview{}, err
	}
	o.Flow = c.flow(o)
	return o, nil
}

// Flow reads what the flow picture needs and draws it.
func (c *Console) Flow(ctx context.Context) (Flow, error) {
	var o Overview
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { o.Outbox, err = c.Outbox(gctx); return })
	g.Go(func() (err error) { o.Relays, err = c.Relays(gctx); return })
	g.Go(func() error { o.Pipeline.Queues, o.Pipeline.QueuesError = c.queues(gctx); return nil })
	g.Go(func() (err error) {
		o.Pipeline.Products, o.Pipeline.OldestOpenSeconds, err = c.productsByStatus(gctx)
		return
	})
	g.Go(func() error { o.StorageError = c.storage(gctx); return nil })
	if err := g.Wait(); err != nil {
		return Flow{}, err
	}
	return c.flow(o), nil
}

func (c *Console) storage(ctx context.Context) string {
	if c.cfg.Storage == nil {
		return ""
	}
	return errText(c.cfg.Storage(ctx))
}

// flow draws the stages from what o holds.
func (c *Console) flow(o Overview) Flow {
	pile := c.cfg.PileUpAge.Seconds()
	ob := o.Outbox
	f := Flow{}
	add := func(s Stage) { f.Stages = append(f.Stages, s) }
	ptr := func(v float64) *float64 { return &v }

	// API: what it writes is what the outbox receives.
	created := ob.Created
	add(Stage{Name: "api", Health: HealthOK, Rate: &created,
		Note: "events written with their changes, per second"})

	out := Stage{Name: "outbox", Health: HealthOK, Backlog: &ob.Pending, OldestSeconds: ptr(ob.OldestPendingSeconds),
		Note: fmt.Sprintf("%s pending, %s due now, %s waiting for a retry, %s dead", fmtCount(ob.Pending),
			fmtCount(ob.Due), fmtCount(ob.Retrying), fmtCount(ob.Dead))}
	if ob.OldestPendingSeconds > pile {
		out.Health, out.PilingUp = HealthWarn, true
	}
	if ob.Dead.N > 0 && out.Health == HealthOK {
		out.Health = HealthWarn
	}
	add(out)

	add(c.relayStage(o.Relays, ob))
	add(c.brokerStage(o))
	add(c.workerStage(o.Pipeline))

	st := Stage{Name: "storage", Health: HealthOK, Note: "object storage answers"}
	if c.cfg.Storage == nil {
		st.Health, st.Note = HealthUnknown, "this process does not check object storage"
	} else if o.StorageError != "" {
		st.Health, st.Note = HealthDown, o.StorageError
	}
	add(st)

	open := o.Pipeline.Products[productd.ImageStatusPending]
	open.N += o.Pipeline.Products[productd.ImageStatusProcessing].N
	open.Estimate = open.Estimate || o.Pipeline.Products[productd.ImageStatusProcessing].Estimate
	failed := o.Pipeline.Products[productd.ImageStatusFailed]
	done := Stage{Name: "done", Health: HealthOK, Backlog: &open, OldestSeconds: ptr(o.Pipeline.OldestOpenSeconds),
		Note: fmt.Sprintf("%s products waiting for their images, %s failed", fmtCount(open), fmtCount(failed))}
	if failed.N > 0 {
		done.Health = HealthWarn
	}
	if o.Pipeline.OldestOpenSeconds > pile {
		done.PilingUp = true
	}
	add(done)

	for i, s := range f.Stages {
		if s.PilingUp && f.Bottleneck == "" {
			f.Bottleneck = s.Name
		}
		// Products wait whenever any stage before them does: "done" is the
		// bottleneck only when nothing upstream piles up.
		if s.Name == "done" && f.Bottleneck != "" && f.Bottleneck != "done" {
			f.Stages[i].PilingUp = false
		}
	}
	return f
}

func (c *Console) relayStage(r Relays, ob Outbox) Stage {
	rate := ob.PublishedRate
	s := Stage{Name: "relay", Health: HealthOK, Rate: &rate, Backlog: &ob.Due}
	var live, running, brokerDown, noRoute int
	var noRouteReason string
	for _, p := range r.Processes {
		if p.Stale || p.State == relay.StateStopped {
			continue
		}
		live++
		switch p.State {
		case relay.StateRunning:
			running++
		case relay.StateBrokerDown:
			brokerDown++
		case relay.StateNoRoute:
			noRoute++
			noRouteReason = p.Reason
		}
	}
	switch {
	case r.Paused:
		s.Health = HealthWarn
		s.Note = fmt.Sprintf("paused for maintenance by %s since %s: %s", r.ChangedBy, r.ChangedAt.Format(time.RFC3339), r.Reason)
	case live == 0:
		s.Health, s.Note = HealthDown, fmt.Sprintf("no relay process reported in the last %v", c.cfg.StaleAfter)
	case brokerDown == live:
		s.Health, s.Note = HealthDown, "every relay waits for the broker; rows stay pending with their attempts untouched"
	case noRoute+brokerDown == live:
		s.Health, s.Note = HealthDown, "no route for the events, rows wait in the outbox: "+noRouteReason
	default:
		s.Note = fmt.Sprintf("%d of %d relay processes publishing", running, live)
	}
	if s.Health != HealthOK && ob.Due.N > 0 {
		s.PilingUp = ob.OldestPendingSeconds > c.cfg.PileUpAge.Seconds()
	}
	return s
}

func (c *Console) brokerStage(o Overview) Stage {
	s := Stage{Name: "broker", Health: HealthOK}
	work := c.queue(o.Pipeline, "work")
	for _, p := range o.Relays.Processes {
		if !p.Stale && p.State == relay.StateBrokerDown {
			s.Health, s.Note = HealthDown, fmt.Sprintf("relay %s: %s", p.Process, p.Reason)
		}
	}
	if o.Pipeline.QueuesError != "" || work == nil {
		s.Health = HealthDown
		s.Note = "the management API does not answer: " + o.Pipeline.QueuesError
		return s
	}
	for _, n := range o.Relays.Broker.Nodes {
		if n.MemAlarm || n.DiskFreeAlarm {
			s.Health, s.Note = HealthWarn, "node "+n.Name+" raised a resource alarm: publishers are blocked"
		}
	}
	s.Rate = &Rate{PerSecond: work.PublishRate, Estimate: true, Source: "broker's publish rate into " + work.Name}
	s.Backlog = &Count{N: work.Ready, Estimate: true}
	if s.Note == "" {
		s.Note = fmt.Sprintf("%d messages ready in %s", work.Ready, work.Name)
	}
	s.PilingUp = piling(work.Ready, work.AckRate, c.cfg.PileUpAge)
	return s
}

func (c *Console) workerStage(p Pipeline) Stage {
	s := Stage{Name: "worker", Health: HealthOK}
	work := c.queue(p, "work")
	if work == nil || work.Error != "" {
		s.Health, s.Note = HealthUnknown, "the work queue cannot be read"
		return s
	}
	var retrying int64
	for _, q := range p.Queues {
		if q.Role == "retry" {
			retrying += q.Messages
		}
	}
	s.Rate = &Rate{PerSecond: work.AckRate, Estimate: true, Source: "broker's ack rate on " + work.Name}
	s.Backlog = &Count{N: work.Unacked + retrying, Estimate: true}
	s.Note = fmt.Sprintf("%d consumers, %d messages in work, %d waiting in retry queues", work.Consumers, work.Unacked, retrying)
	switch {
	case work.Consumers == 0:
		s.Health = HealthDown
		s.Note = "no worker consumes " + work.Name
		s.PilingUp = work.Ready > 0
	case retrying > 0:
		s.Health = HealthWarn
	}
	return s
}

// piling reports whether backlog would take longer than limit to drain at
// rate per second.
func piling(backlog int64, rate float64, limit time.Duration) bool {
	if backlog == 0 {
		return false
	}
	return rate <= 0 || float64(backlog)/rate > limit.Seconds()
}

func (c *Console) queue(p Pipeline, role string) *Queue {
	for i := range p.Queues {
		if p.Queues[i].Role == role {
			return &p.Queues[i]
		}
	}
	return nil
}

// fmtCount writes a count, with "~" before an estimate.
func fmtCount(c Count) string {
	if c.Estimate {
		return fmt.Sprintf("~%d", c.N)
	}
	return fmt.Sprint(c.N)
}
