package ops

import (
	"context"
	"time"

	"github.com/productd/productd/relay"
)

// Relays is the relays' maintenance switch and what each relay process
// last reported, with the broker's own view of itself.
type Relays struct {
	Paused    bool      `json:"paused"`
	ChangedBy string    `json:"changed_by"`
	Reason    string    `json:"reason"`
	ChangedAt time.Time `json:"changed_at"`
	// Processes are the relay processes that reported within the last
	// hour, newest report first; Stale marks those silent for longer than
	// Config.StaleAfter.
	Processes []RelayProcess `json:"processes"`
	Broker    Broker         `json:"broker"`
}

// RelayProcess is one relay process's last report.
type RelayProcess struct {
	Process     string      `json:"process"`
	State       string      `json:"state"`
	Since       time.Time   `json:"since"`
	Reason      string      `json:"reason"`
	BrokerState string      `json:"broker_state"`
	BrokerSince *time.Time  `json:"broker_since"`
	LastBatch   *RelayBatch `json:"last_batch"`
	Published   int64       `json:"published"`
	Failed      int64       `json:"failed"`
	StartedAt   time.Time   `json:"started_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
	Stale       bool        `json:"stale"`
}

// RelayBatch is a relay's last batch that had rows.
type RelayBatch struct {
	At              time.Time `json:"at"`
	Rows            int       `json:"rows"`
	Published       int       `json:"published"`
	Failed          int       `json:"failed"`
	Unconfirmed     int       `json:"unconfirmed"`
	DurationSeconds float64   `json:"duration_seconds"`
	Outcome         string    `json:"outcome"`
}

// Broker is RabbitMQ as its management API reports it.
type Broker struct {
	Reachable bool         `json:"reachable"`
	Version   string       `json:"version,omitempty"`
	Nodes     []BrokerNode `json:"nodes,omitempty"`
	Error     string       `json:"error,omitempty"`
}

// BrokerNode is one node's health.
type BrokerNode struct {
	Name          string `json:"name"`
	Running       bool   `json:"running"`
	MemAlarm      bool   `json:"mem_alarm"`
	DiskFreeAlarm bool   `json:"disk_free_alarm"`
}

// Relays reads the maintenance switch, the relays' reports and the broker's
// health.
func (c *Console) Relays(ctx context.Context) (Relays, error) {
	ctl, err := relay.ReadControl(ctx, c.cfg.Pool)
	if err != nil {
		return Relays{}, err
	}
	statuses, err := relay.ReadStatuses(ctx, c.cfg.Pool, time.Hour)
	if err != nil {
		return Relays{}, err
	}
	r := Relays{Paused: ctl.Paused, ChangedBy: ctl.ChangedBy, Reason: ctl.Reason, ChangedAt: ctl.ChangedAt,
		Processes: make([]RelayProcess, len(statuses)), Broker: c.broker(ctx)}
	now := time.Now()
	for i, s := range statuses {
		p := RelayProcess{
			Process: s.Process, State: s.State, Since: s.Since, Reason: s.Reason, BrokerState: s.BrokerState,
			BrokerSince: s.BrokerSince, Published: s.Published, Failed: s.Failed, StartedAt: s.StartedAt,
			UpdatedAt: s.UpdatedAt, Stale: now.Sub(s.UpdatedAt) > c.cfg.StaleAfter,
		}
		if b := s.LastBatch; b != nil {
			p.LastBatch = &RelayBatch{At: b.At, Rows: b.Rows, Published: b.Published, Failed: b.Failed,
				Unconfirmed: b.Unconfirmed, DurationSeconds: seconds(b.Duration), Outcome: b.Outcome}
		}
		r.Processes[i] = p
	}
	return r, nil
}

func (c *Console) broker(ctx context.Context) Broker {
	o, err := c.mgmt.Overview(ctx)
	if err != nil {
		return Broker{Error: errText(err)}
	}
	b := Broker{Reachable: true, Version: o.Version}
	for _, n := range o.Nodes {
		b.Nodes = append(b.Nodes, BrokerNode(n))
	}
	return b
}

// PauseRelay pauses every relay: they stop claiming rows within a second or
// two, and the rows wait in the outbox until ResumeRelay.
func (c *Console) PauseRelay(ctx context.Context, actor, reason string) error {
	_, err := relay.SetPaused(ctx, c.cfg.Pool, true, actor, reason)
	c.record(ctx, actor, "pause relay", "relay", reason, err, "paused")
	return err
}

// ResumeRelay lets every relay publish again.
func (c *Console) ResumeRelay(ctx context.Context, actor, reason string) error {
	_, err := relay.SetPaused(ctx, c.cfg.Pool, false, actor, reason)
	c.record(ctx, actor, "resume relay", "relay", reason, err, "resumed")
	return err
}
