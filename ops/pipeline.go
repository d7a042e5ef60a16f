package ops

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/productd/productd"
	"github.com/productd/productd/ops/internal/parkinglog"
	"github.com/productd/productd/outbox"
)

// Pipeline is the image pipeline: its queues, the parked messages, and the
// products by image status with the latest failures.
type Pipeline struct {
	// Queues are the work queue, the retry queues and the parking lot, as
	// the broker last sampled them (every few seconds): their figures are
	// the broker's, counted without touching a message.
	Queues      []Queue `json:"queues"`
	QueuesError string  `json:"queues_error,omitempty"`
	// Parked are the newest parked messages with their reasons, read from
	// the parking log (see package parkinglog) without consuming.
	Parked      []Parked `json:"parked"`
	ParkedError string   `json:"parked_error,omitempty"`
	// Products counts products by image status: exact for pending,
	// processing and failed (up to outbox.CountCap), estimates for none and
	// done.
	Products map[productd.ImageStatus]Count `json:"products"`
	// OldestOpenSeconds is how long the longest-waiting pending or
	// processing product has waited since its last change.
	OldestOpenSeconds float64   `json:"oldest_open_seconds"`
	Failures          []Failure `json:"failures"`
}

// Queue is one queue of the pipeline.
type Queue struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	Messages  int64  `json:"messages"`
	Ready     int64  `json:"ready"`
	Unacked   int64  `json:"unacked"`
	Consumers int64  `json:"consumers"`
	// PublishRate, DeliverRate and AckRate are the broker's estimates of
	// messages per second.
	PublishRate float64 `json:"publish_rate"`
	DeliverRate float64 `json:"deliver_rate"`
	AckRate     float64 `json:"ack_rate"`
	Error       string  `json:"error,omitempty"`
}

// Parked is a parked message.
type Parked struct {
	MessageID string `json:"message_id"`
	EventType string `json:"event_type"`
	ProductID int64  `json:"product_id"`
	Reason    string `json:"reason"`
	Attempts  int64  `json:"attempts"`
}

// Failure is a product whose images failed.
type Failure struct {
	ProductID int64     `json:"product_id"`
	Name      string    `json:"product_name"`
	Error     string    `json:"image_error"`
	At        time.Time `json:"at"`
}

// Pipeline reads the image pipeline's queues, parked messages and products.
func (c *Console) Pipeline(ctx context.Context) (Pipeline, error) {
	var p Pipeline
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { p.Queues, p.QueuesError = c.queues(gctx); return nil })
	g.Go(func() error {
		parked, err := c.parked(gctx, c.cfg.ListLimit)
		p.Parked, p.ParkedError = parked, errText(err)
		return nil
	})
	g.Go(func() error {
		var err error
		p.Products, p.OldestOpenSeconds, err = c.productsByStatus(gctx)
		return err
	})
	g.Go(func() error {
		var err error
		p.Failures, err = c.failures(gctx, c.cfg.ListLimit)
		return err
	})
	return p, g.Wait()
}

// queues asks the management API about every queue of the topology.
func (c *Console) queues(ctx context.Context) ([]Queue, string) {
	names := c.topo.Queues()
	out := make([]Queue, len(names))
	g, gctx := errgroup.WithContext(ctx)
	for i, name := range names {
		role := "retry"
		switch name {
		case c.topo.WorkQueue:
			role = "work"
		case c.topo.ParkingQueue:
			role = "parking"
		}
		g.Go(func() error {
			q, err := c.mgmt.Queue(gctx, name)
			out[i] = Queue{Name: name, Role: role, Messages: q.Messages, Ready: q.Ready, Unacked: q.Unacked,
				Consumers: q.Consumers, PublishRate: q.Stats.Publish.Rate, DeliverRate: q.Stats.Deliver.Rate,
				AckRate: q.Stats.Ack.Rate, Error: errText(err)}
			return nil
		})
	}
	_ = g.Wait()
	failed := 0
	for _, q := range out {
		if q.Error != "" {
			failed++
		}
	}
	if failed == len(out) {
		return out, out[0].Error
	}
	return out, ""
}

// parkedKept is how many of the newest parked messages a read of the
// parking log keeps: enough for the list and for finding one product's.
const parkedKept = 500

// parked returns the newest limit entries of the parking log: Run's last
// read while it is fresh, or a read now.
func (c *Console) parked(ctx context.Context, limit int) ([]Parked, error) {
	snap := c.parkedSnap.Load()
	if snap == nil || time.Since(snap.at) > 3*c.cfg.ParkedRefresh {
		entries, err := c.readParked(ctx)
		if err != nil {
			return nil, err
		}
		snap = &parkedSnapshot{entries: entries}
	}
	return snap.entries[:min(limit, len(snap.entries))], nil
}

// readParked reads the newest parkedKept entries of the parking log and
// keeps them for parked.
func (c *Console) readParked(ctx context.Context) ([]Parked, error) {
	at := time.Now()
	ch, err := c.channel(ctx)
	if err != nil {
		return nil, fmt.Errorf("parking log: %w", err)
	}
	entries, err := parkinglog.Newest(ctx, ch, parkinglog.Name(c.topo), parkedKept)
	if err != nil {
		return nil, err
	}
	out := make([]Parked, len(entries))
	for i, e := range entries {
		out[i] = Parked{MessageID: e.MessageID, EventType: e.EventType, ProductID: e.ProductID, Reason: e.Reason,
			Attempts: e.Attempts}
	}
	c.parkedSnap.Store(&parkedSnapshot{at: at, entries: out})
	return out, nil
}

// The product counts: exact through the partial indexes of the unfinished
// products (which carry their status) and of the failed ones, up to a cap;
// estimates above it and for the rest.
const productCountsSQL = `
	SELECT open.pending, open.processing,
		(SELECT count(*) FROM (SELECT 1 FROM products WHERE image_status = 'failed' LIMIT $1) s),
		(SELECT extract(epoch FROM now() - min(updated_at)) FROM (SELECT updated_at FROM products
			WHERE image_status IN ('pending', 'processing') ORDER BY updated_at LIMIT 1) s)
	FROM (SELECT count(*) FILTER (WHERE image_status = 'pending') AS pending,
			count(*) FILTER (WHERE image_status = 'processing') AS processing
		FROM (SELECT image_status FROM products WHERE image_status IN ('pending', 'processing') LIMIT $1) s) AS open`

func (c *Console) productsByStatus(ctx context.Context) (map[productd.ImageStatus]Count, float64, error) {
	var pending, processing, failed int64
	var oldest *float64
	if err := c.cfg.Pool.QueryRow(ctx, productCountsSQL, outbox.CountCap+1).Scan(&pending, &processing, &failed, &oldest); err != nil {
		return nil, 0, fmt.Errorf("count products by image status: %w", err)
	}
	// The unfinished products are counted together: past the cap, neither
	// of their counts is whole.
	openCapped := pending+processing > outbox.CountCap
	out := map[productd.ImageStatus]Count{}
	for status, n := range map[productd.ImageStatus]int64{
		productd.ImageStatusPending: pending, productd.ImageStatusProcessing: processing, productd.ImageStatusFailed: failed,
	} {
		out[status] = Count{N: n}
		if status == productd.ImageStatusFailed && n > outbox.CountCap || status != productd.ImageStatusFailed && openCapped {
			est, err := outbox.Estimate(ctx, c.cfg.Pool, `SELECT 1 FROM products WHERE image_status = $1`, string(status))
			if err != nil {
				return nil, 0, err
			}
			out[status] = Count{N: max(est.N, n), Estimate: true}
		}
	}
	for _, status := range []productd.ImageStatus{productd.ImageStatusNone, productd.ImageStatusDone} {
		est, err := outbox.Estimate(ctx, c.cfg.Pool, `SELECT 1 FROM products WHERE image_status = $1`, string(status))
		if err != nil {
			return nil, 0, err
		}
		out[status] = countOf(est)
	}
	var age float64
	if oldest != nil {
		age = max(*oldest, 0)
	}
	return out, age, nil
}

func (c *Console) failures(ctx context.Context, limit int) ([]Failure, error) {
	rows, err := c.cfg.Pool.Query(ctx, `SELECT id, product_name, image_error, updated_at FROM products
		WHERE image_status = 'failed' ORDER BY updated_at DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("read failed products: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Failure, error) {
		var f Failure
		return f, row.Scan(&f.ProductID, &f.Name, &f.Error, &f.At)
	})
	if err != nil {
		return nil, fmt.Errorf("read failed products: %w", err)
	}
	return out, nil
}

// errUnavailable says an action needs a part this process does not have.
func errUnavailable(what string) error {
	return productd.Errorf(productd.EUNAVAILABLE, "%s is not available in this process", what)
}

// RerunImages schedules product id's images again.
func (c *Console) RerunImages(ctx context.Context, actor string, id int64, reason string) error {
	err := errUnavailable("re-running images")
	if c.cfg.Images != nil {
		err = c.cfg.Images.Reschedule(ctx, id, reason)
	}
	c.record(ctx, actor, "re-run images", "product "+strconv.FormatInt(id, 10), reason, err, "rescheduled")
	return err
}

// ReplayParking moves up to limit parked messages back to the work queue.
func (c *Console) ReplayParking(ctx context.Context, actor string, limit int) (int, error) {
	n, err := 0, errUnavailable("replaying the parking lot")
	if c.cfg.Images != nil {
		n, err = c.cfg.Images.ReplayParking(ctx, limit)
	}
	c.record(ctx, actor, "replay parking lot", c.topo.ParkingQueue, fmt.Sprintf("up to %d messages", limit), err, fmt.Sprintf("replayed %d", n))
	return n, err
}
