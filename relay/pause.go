package relay

import (
	"errors"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/productd/productd/broker"
)

// PauseReason says why a relay publishes nothing although rows may be due.
// In every case the rows wait in the outbox with their attempts untouched.
type PauseReason string

// The reasons of a pause. A relay resumes by itself after every one of them
// but PausedMaintenance, at its first drain that ends without error.
const (
	// NotPaused: the relay publishes.
	NotPaused PauseReason = ""
	// PausedBrokerDown: no connection to the broker, or no channel on it.
	PausedBrokerDown PauseReason = "broker_down"
	// PausedUnanswered: the broker is connected but did not answer for a
	// batch, before the confirm timeout or before the channel closed.
	PausedUnanswered PauseReason = "unanswered"
	// PausedNoRoute: the broker returned messages as unroutable although
	// its topology binds their routing keys: a queue or a binding is
	// missing. The relay declares the topology again, and tries again only
	// once a declaration has succeeded.
	PausedNoRoute PauseReason = "no_route"
	// PausedMaintenance: an operator paused every relay (SetPaused).
	PausedMaintenance PauseReason = "maintenance"
)

// StateNoRoute is the state a relay reports in its status row (see
// ReadStatuses) while paused for PausedNoRoute.
const StateNoRoute = "no_route"

// Pause is why a relay publishes nothing, and since when.
type Pause struct {
	// Reason is NotPaused while the relay publishes.
	Reason PauseReason
	// Since is when the pause began; zero for PausedMaintenance, whose
	// Control.ChangedAt says when.
	Since time.Time
	// Detail is the error that paused the relay, in words.
	Detail string
}

// ErrNoRoute is returned by Drain when the broker returned messages as
// unroutable that its topology should route, and while the relay waits for
// the topology to be declared again. The rows concerned stay pending, their
// attempts untouched.
var ErrNoRoute = errors.New("broker has no route for messages its topology routes")

// pauses is a relay's pause, as its drains found it.
type pauses struct {
	mu  sync.Mutex
	cur Pause
	// declarations is the broker's count of topology declarations when a
	// no-route pause began: the relay tries again once it moves.
	declarations int64
}

// pause returns the relay's pause; a maintenance pause comes first.
func (r *Relay) pause() Pause {
	if !r.maint.running() {
		return Pause{Reason: PausedMaintenance, Detail: "paused for maintenance"}
	}
	r.pauses.mu.Lock()
	defer r.pauses.mu.Unlock()
	return r.pauses.cur
}

// stillNoRoute reports whether the relay is paused for no route and the
// topology has not been declared since: another drain would only have its
// messages returned again.
func (r *Relay) stillNoRoute() bool {
	r.pauses.mu.Lock()
	defer r.pauses.mu.Unlock()
	return r.pauses.cur.Reason == PausedNoRoute && r.broker.Stats().Declarations == r.pauses.declarations
}

// noteDrain updates the pause from how a drain ended: an error of the
// broker's pauses the relay, a drain without error resumes it, anything
// else (the database, the caller's context) leaves it as it was. Every
// change is logged, a no-route pause loudly. declarations is the broker's
// count of topology declarations when the drain began.
func (r *Relay) noteDrain(err error, declarations int64) {
	reason := NotPaused
	switch {
	case err == nil:
	case errors.Is(err, ErrNoRoute):
		reason = PausedNoRoute
	case errors.Is(err, ErrBrokerUnavailable) || errors.Is(err, broker.ErrClosed):
		reason = PausedUnanswered
		if !r.broker.Connected() {
			reason = PausedBrokerDown
		}
	default:
		return
	}
	r.pauses.mu.Lock()
	defer r.pauses.mu.Unlock()
	if reason == PausedNoRoute {
		// Wait for a declaration after the drain began, also after one
		// that did not help.
		r.pauses.declarations = declarations
	}
	was := r.pauses.cur
	if reason == was.Reason {
		return
	}
	now := time.Now()
	r.pauses.cur = Pause{Reason: reason, Since: now}
	if err != nil {
		r.pauses.cur.Detail = err.Error()
	}
	entry := r.log.WithField("pause", string(reason))
	switch reason {
	case NotPaused:
		r.log.WithFields(logrus.Fields{"paused_for": now.Sub(was.Since).Round(time.Millisecond).String(), "was": string(was.Reason)}).
			Info("relay: resumed")
	case PausedNoRoute:
		entry.WithError(err).Error("relay: paused: the broker returned messages its topology should route, so a queue or binding is missing; " +
			"rows stay pending with their attempts untouched while the topology is declared again")
	default:
		entry.WithError(err).Warn("relay: paused: the broker is away or does not answer; rows stay pending with their attempts untouched")
	}
}
