package ops

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/productd/productd/outbox"
)

// DeadFilter selects dead rows; zero fields select everything.
type DeadFilter = outbox.DeadFilter

// DeadRow is an outbox row that ran out of attempts.
type DeadRow struct {
	ID        int64     `json:"id"`
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	ProductID int64     `json:"product_id"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error"`
	CreatedAt time.Time `json:"created_at"`
	DiedAt    time.Time `json:"died_at"`
}

// DeadPage is one page of dead rows, newest first.
type DeadPage struct {
	Rows []DeadRow `json:"rows"`
	// Next is the cursor of the next page (pass it as before), 0 on the
	// last page.
	Next int64 `json:"next"`
}

// Dead returns up to Config.ListLimit dead rows f selects with ids below
// before (0 for the first page).
func (c *Console) Dead(ctx context.Context, f DeadFilter, before int64) (DeadPage, error) {
	rows, err := outbox.ListDead(ctx, c.cfg.Pool, f, before, c.cfg.ListLimit+1)
	if err != nil {
		return DeadPage{}, err
	}
	var p DeadPage
	if len(rows) > c.cfg.ListLimit {
		rows = rows[:c.cfg.ListLimit]
		p.Next = rows[len(rows)-1].ID
	}
	p.Rows = make([]DeadRow, len(rows))
	for i, r := range rows {
		p.Rows[i] = DeadRow(r)
	}
	return p, nil
}

// RequeueDead makes dead row id pending again, due now.
func (c *Console) RequeueDead(ctx context.Context, actor string, id int64) error {
	err := outbox.Requeue(ctx, c.cfg.Pool, id)
	c.record(ctx, actor, "requeue dead row", "outbox row "+strconv.FormatInt(id, 10), "", err, "requeued")
	return err
}

// RequeueDeadMatching requeues every dead row f selects and returns how
// many it requeued.
func (c *Console) RequeueDeadMatching(ctx context.Context, actor string, f DeadFilter) (int64, error) {
	n, err := outbox.RequeueDead(ctx, c.cfg.Pool, f)
	c.record(ctx, actor, "requeue dead rows", "outbox", describeFilter(f), err, fmt.Sprintf("requeued %d", n))
	return n, err
}

// DiscardDead deletes dead row id: its event will never be published.
func (c *Console) DiscardDead(ctx context.Context, actor string, id int64) error {
	err := outbox.Discard(ctx, c.cfg.Pool, id)
	c.record(ctx, actor, "discard dead row", "outbox row "+strconv.FormatInt(id, 10), "", err, "discarded")
	return err
}

func describeFilter(f DeadFilter) string {
	if f.IsZero() {
		return "every dead row"
	}
	s := ""
	if f.EventType != "" {
		s += " event_type=" + f.EventType
	}
	if f.ProductID != 0 {
		s += " product_id=" + strconv.FormatInt(f.ProductID, 10)
	}
	if f.ErrorContains != "" {
		s += " error~" + strconv.Quote(f.ErrorContains)
	}
	return s[1:]
}
