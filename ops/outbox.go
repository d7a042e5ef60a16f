package ops

import (
	"context"
	"time"

	"github.com/productd/productd/outbox"
)

// Outbox is the outbox at a glance.
type Outbox struct {
	Pending   Count `json:"pending"`
	Due       Count `json:"due"`
	Retrying  Count `json:"retrying"`
	Dead      Count `json:"dead"`
	Published Count `json:"published"`
	// OldestPendingSeconds is how long the oldest pending row has waited.
	OldestPendingSeconds float64 `json:"oldest_pending_seconds"`
	Created              Rate    `json:"created_rate"`
	PublishedRate        Rate    `json:"published_rate"`
	// RetryGroups counts the rows waiting for a retry by attempt number;
	// NextRetries are the next ones due, with their last errors.
	RetryGroups []RetryGroup `json:"retry_groups"`
	NextRetries []Retry      `json:"next_retries"`
}

// RetryGroup counts the rows that failed Attempts times so far.
type RetryGroup struct {
	Attempts      int       `json:"attempts"`
	Rows          int64     `json:"rows"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
}

// Retry is a row waiting for its next attempt.
type Retry struct {
	ID            int64     `json:"id"`
	EventType     string    `json:"event_type"`
	ProductID     int64     `json:"product_id"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastError     string    `json:"last_error"`
}

// Outbox reads the outbox's figures and its retries.
func (c *Console) Outbox(ctx context.Context) (Outbox, error) {
	s, err := outbox.ReadStats(ctx, c.cfg.Pool)
	if err != nil {
		return Outbox{}, err
	}
	groups, next, err := outbox.ReadRetries(ctx, c.cfg.Pool, c.cfg.ListLimit)
	if err != nil {
		return Outbox{}, err
	}
	o := Outbox{
		Pending: countOf(s.Pending), Due: countOf(s.Due), Retrying: countOf(s.Retrying), Dead: countOf(s.Dead),
		Published: countOf(s.Published), OldestPendingSeconds: seconds(s.OldestPendingAge),
		Created:       rateOf(s.Created, "outbox rows created (newest rows by id)"),
		PublishedRate: rateOf(s.PublishedRate, "outbox rows published (published_at index)"),
		RetryGroups:   make([]RetryGroup, len(groups)),
		NextRetries:   make([]Retry, len(next)),
	}
	for i, g := range groups {
		o.RetryGroups[i] = RetryGroup(g)
	}
	for i, r := range next {
		o.NextRetries[i] = Retry(r)
	}
	return o, nil
}
