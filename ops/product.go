package ops

import (
	"context"
	"fmt"
	"time"

	"github.com/productd/productd"
	"github.com/productd/productd/db"
	"github.com/productd/productd/outbox"
)

// Story is one product's way through the pipeline, and the answer to "why
// is this product not done?".
type Story struct {
	ProductID int64 `json:"product_id"`
	// Found is false when no product has the id (never created, or
	// deleted); Events may still show its rows.
	Found         bool                 `json:"found"`
	Name          string               `json:"product_name,omitempty"`
	ImageStatus   productd.ImageStatus `json:"image_status,omitempty"`
	ImageError    string               `json:"image_error,omitempty"`
	Version       int64                `json:"version,omitempty"`
	ImagesVersion int64                `json:"images_version,omitempty"`
	Images        int                  `json:"images"`
	Compressed    int                  `json:"compressed"`
	CreatedAt     *time.Time           `json:"created_at,omitempty"`
	UpdatedAt     *time.Time           `json:"updated_at,omitempty"`
	// Events are the product's outbox rows, newest first, as long as
	// retention keeps them.
	Events []Event `json:"events"`
	// Parked are the product's messages in the parking log.
	Parked []Parked `json:"parked"`
	// Where says where the product's current message is now, as far as
	// can be known without consuming it.
	Where string `json:"where"`
	// Why answers "why is this product not done?".
	Why string `json:"why"`
}

// Event is one outbox row of the product.
type Event struct {
	RowID          int64         `json:"row_id"`
	EventID        string        `json:"event_id"`
	EventType      string        `json:"event_type"`
	ProductVersion int64         `json:"product_version"`
	Status         outbox.Status `json:"status"`
	Attempts       int           `json:"attempts"`
	LastError      string        `json:"last_error"`
	CreatedAt      time.Time     `json:"created_at"`
	NextAttemptAt  time.Time     `json:"next_attempt_at"`
	PublishedAt    *time.Time    `json:"published_at"`
}

// storyEvents bounds the outbox rows a story shows.
const storyEvents = 50

// Product tells product id's story.
func (c *Console) Product(ctx context.Context, id int64) (Story, error) {
	s := Story{ProductID: id}
	p, err := db.NewProductService(c.cfg.Pool).FindProductByID(ctx, id)
	switch {
	case productd.ErrorCode(err) == productd.ENOTFOUND:
	case err != nil:
		return Story{}, fmt.Errorf("read product %d: %w", id, err)
	default:
		s.Found, s.Name, s.ImageStatus, s.ImageError = true, p.Name, p.ImageStatus, p.ImageError
		s.Version, s.ImagesVersion, s.Images, s.Compressed = p.Version, p.ImagesVersion, len(p.Images), len(p.CompressedImages)
		s.CreatedAt, s.UpdatedAt = &p.CreatedAt, &p.UpdatedAt
	}
	entries, err := outbox.ProductEntries(ctx, c.cfg.Pool, id, storyEvents)
	if err != nil {
		return Story{}, err
	}
	s.Events = make([]Event, len(entries))
	for i, e := range entries {
		s.Events[i] = Event{RowID: e.ID, EventID: e.EventID, EventType: e.EventType, ProductVersion: e.ProductVersion,
			Status: e.Status, Attempts: e.Attempts, LastError: e.LastError, CreatedAt: e.CreatedAt,
			NextAttemptAt: e.NextAttemptAt, PublishedAt: e.PublishedAt}
	}
	parkedErr := ""
	if s.ImageStatus == productd.ImageStatusFailed || !s.Found {
		parked, err := c.parked(ctx, parkedKept)
		parkedErr = errText(err)
		for _, m := range parked {
			if m.ProductID == id {
				s.Parked = append(s.Parked, m)
			}
		}
	}
	s.Where, s.Why = c.diagnose(ctx, s, parkedErr)
	return s, nil
}

// current returns the event that carries the product's current images: the
// newest created or images-changed event at or after ImagesVersion.
func (s Story) current() *Event {
	for i, e := range s.Events {
		if e.EventType != string(productd.EventProductDeleted) && e.ProductVersion >= s.ImagesVersion {
			return &s.Events[i]
		}
	}
	return nil
}

// diagnose answers where the product's message is and why it is not done.
func (c *Console) diagnose(ctx context.Context, s Story, parkedErr string) (where, why string) {
	if !s.Found {
		if len(s.Events) > 0 && s.Events[0].EventType == string(productd.EventProductDeleted) {
			return "", "the product was deleted"
		}
		return "", "no product has this id"
	}
	switch s.ImageStatus {
	case productd.ImageStatusNone:
		return "", "it has no images: nothing to do"
	case productd.ImageStatusDone:
		return "", "it is done: every image is compressed"
	case productd.ImageStatusFailed:
		where = "the worker finished with it"
		if len(s.Parked) > 0 {
			where = "parked: " + s.Parked[0].Reason
		} else if parkedErr != "" {
			where = "unknown (" + parkedErr + ")"
		}
		return where, "the worker gave up: " + s.ImageError + ". Fix the image, or re-run its images"
	}
	e := s.current()
	if e == nil {
		return "unknown", fmt.Sprintf("no outbox row announces its images (version %d): retention deleted it after it was published, "+
			"so the worker has had the message for a while; re-run its images", s.ImagesVersion)
	}
	switch e.Status {
	case outbox.StatusDead:
		return "the outbox, dead", fmt.Sprintf("its event died in the outbox after %d attempts: %s. Requeue outbox row %d",
			e.Attempts, e.LastError, e.RowID)
	case outbox.StatusPending:
		if e.Attempts > 0 {
			return "the outbox, waiting for a retry", fmt.Sprintf("the broker refused its event %d times (last: %s); next attempt at %s",
				e.Attempts, e.LastError, e.NextAttemptAt.Format(time.RFC3339))
		}
		why = "its event waits in the outbox for the relay"
		if r, err := c.Relays(ctx); err == nil {
			switch {
			case r.Paused:
				why += fmt.Sprintf(", which is paused for maintenance by %s: %s", r.ChangedBy, r.Reason)
			case c.relayStage(r, Outbox{}).Health == HealthDown:
				why += ": " + c.relayStage(r, Outbox{}).Note
			}
		}
		return "the outbox", why
	}
	where = "the work queue or a retry queue (a queue cannot be searched without consuming it)"
	why = fmt.Sprintf("its event was published at %s; the image worker has not finished it", e.PublishedAt.Format(time.RFC3339))
	if q, _ := c.queues(ctx); len(q) > 0 {
		if w := c.queue(Pipeline{Queues: q}, "work"); w != nil && w.Error == "" {
			if w.Consumers == 0 {
				why += ": no worker consumes " + w.Name
			} else {
				why += fmt.Sprintf(" (%d messages ready, %d being worked on by %d consumers)", w.Ready, w.Unacked, w.Consumers)
			}
		}
	}
	return where, why
}
