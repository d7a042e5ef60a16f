package broker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/internal/backoff"
	"github.com/productd/productd/logging"
)

// ErrClosed is returned by a Broker's methods after Close.
var ErrClosed = errors.New("broker closed")

// State is the connection's state, as logged on every change.
type State string

// The connection states. A Broker starts Connecting, is Connected once the
// connection is open and the topology declared, goes back to Connecting when
// the connection is lost, and ends Closed.
const (
	StateConnecting State = "connecting"
	StateConnected  State = "connected"
	StateClosed     State = "closed"
)

// Broker owns one AMQP connection to RabbitMQ, declares the topology on it,
// and replaces it whenever it is lost. It never gives up: while the broker is
// unreachable it keeps trying with a growing wait (see Config.ReconnectMin),
// and every caller waiting in Channel or WaitConnected resumes once a new
// connection is up. Every state change is logged.
//
// A Broker is safe for concurrent use.
type Broker struct {
	cfg   Config
	addrs *addresses
	log   *logrus.Entry

	mu      sync.Mutex
	conn    *amqp.Connection // nil unless connected
	state   State
	changed chan struct{} // closed and replaced on every state change

	// life ends at Close; stop ends it.
	life      context.Context
	stop      context.CancelFunc
	closeOnce sync.Once
	done      chan struct{}

	connects atomic.Int64
	losses   atomic.Int64

	// declaring is held by the one declaration of the topology on a live
	// connection (Redeclare) at a time; repairing is set while one started
	// by repair runs.
	declaring    chan struct{}
	repairing    atomic.Bool
	declarations atomic.Int64
	repairs      atomic.Int64
	topoErr      atomic.Pointer[string]
}

// Stats are a Broker's counters since it was created.
type Stats struct {
	State State
	// Connects counts successful connections, the first one included.
	Connects int64
	// Losses counts connections lost without Close.
	Losses int64
	// Declarations counts successful declarations of the topology: one with
	// every connection, one with every Redeclare. A caller that saw
	// something missing waits for it to move.
	Declarations int64
	// Repairs counts the Redeclare calls that succeeded.
	Repairs int64
	// TopologyError is why the last declaration failed (a queue re-created
	// by hand with other arguments, say); empty once one succeeds.
	TopologyError string
}

// New returns a Broker that starts connecting to cfg.URL (or to one of its
// nodes) in the background at once. It fails only on bad settings, never because RabbitMQ is down: use
// WaitConnected to wait for the first connection. Close it when done.
func New(cfg Config, log *logrus.Logger) (*Broker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.ReconnectMax = max(cfg.ReconnectMax, cfg.ReconnectMin)
	topo, err := cfg.Topology.Resolve()
	if err != nil {
		return nil, err
	}
	cfg.Topology = topo
	addrs, err := newAddresses(cfg.URL)
	if err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:       cfg,
		addrs:     addrs,
		log:       log.WithFields(logrus.Fields{logging.FieldComponent: "broker", "broker": addrs.String()}),
		state:     StateConnecting,
		changed:   make(chan struct{}),
		done:      make(chan struct{}),
		declaring: make(chan struct{}, 1),
	}
	b.life, b.stop = context.WithCancel(context.Background())
	go b.run()
	return b, nil
}

// Topology returns the resolved topology: every name with its prefix, every
// default filled in.
func (b *Broker) Topology() Topology { return b.cfg.Topology }

// State returns the connection's current state.
func (b *Broker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Stats returns the Broker's counters.
func (b *Broker) Stats() Stats {
	s := Stats{
		State: b.State(), Connects: b.connects.Load(), Losses: b.losses.Load(),
		Declarations: b.declarations.Load(), Repairs: b.repairs.Load(),
	}
	if e := b.topoErr.Load(); e != nil {
		s.TopologyError = *e
	}
	return s
}

// Connected reports whether a connection is open right now.
func (b *Broker) Connected() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conn != nil && !b.conn.IsClosed()
}

// WaitConnected returns nil once a connection is open, or ctx's error, or
// ErrClosed after Close.
func (b *Broker) WaitConnected(ctx context.Context) error {
	_, err := b.connection(ctx)
	return err
}

// Changed returns a channel that is closed at the next state change, for a
// caller that wants to notice a lost connection without holding a channel.
func (b *Broker) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// Channel opens a new channel on the live connection, waiting for one when
// the broker is unreachable, until ctx ends or the Broker is closed; a
// broker that does not answer the opening holds it no longer than ctx
// either. The channel dies with its connection: register NotifyClose on it
// to learn when, then ask for a new one. The caller closes it when done.
func (b *Broker) Channel(ctx context.Context) (*amqp.Channel, error) {
	for {
		conn, err := b.connection(ctx)
		if err != nil {
			return nil, err
		}
		ch, err := within(ctx, conn.Channel, func(ch *amqp.Channel) { _ = ch.Close() })
		if err == nil {
			return ch, nil
		}
		if ctx.Err() != nil || !conn.IsClosed() {
			return nil, fmt.Errorf("open channel: %w", err)
		}
		// The connection died between the two calls: connection waits for
		// the next one.
	}
}

// Close stops reconnecting, closes the connection, and waits for the
// background loop to end: at most Config.CloseTimeout for the broker to
// agree to the close, then the connection is dropped. Channels opened by
// callers die with it.
func (b *Broker) Close() error {
	b.closeOnce.Do(b.stop)
	<-b.done
	return nil
}

// connection returns the live connection, waiting for one.
func (b *Broker) connection(ctx context.Context) (*amqp.Connection, error) {
	for {
		b.mu.Lock()
		conn, state, changed := b.conn, b.state, b.changed
		b.mu.Unlock()
		if state == StateClosed {
			return nil, ErrClosed
		}
		if conn != nil && !conn.IsClosed() {
			return conn, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for broker connection: %w", ctx.Err())
		}
	}
}

func (b *Broker) setState(state State, conn *amqp.Connection) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state, b.conn = state, conn
	close(b.changed)
	b.changed = make(chan struct{})
}

// run connects, waits for the connection to be lost, and starts over, until
// Close.
func (b *Broker) run() {
	defer close(b.done)
	defer b.setState(StateClosed, nil)
	b.log.WithField("state", StateConnecting).Info("broker: connecting")

	attempt := 0
	var lostAt time.Time
	for {
		conn, err := b.dial()
		if err != nil {
			attempt++
			wait := backoff.Exponential(attempt, b.cfg.ReconnectMin, b.cfg.ReconnectMax)
			if b.life.Err() == nil {
				b.log.WithError(err).WithFields(logrus.Fields{"state": StateConnecting, "attempt": attempt, "retry_in": wait.String()}).
					Warn("broker: connection attempt failed")
			}
			if !backoff.Sleep(b.life, wait) {
				b.log.WithField("state", StateClosed).Info("broker: closed")
				return
			}
			continue
		}
		fields := logrus.Fields{"state": StateConnected, "attempts": attempt + 1}
		msg := "broker: connected"
		if !lostAt.IsZero() {
			fields["down_for"] = time.Since(lostAt).Round(time.Millisecond).String()
			msg = "broker: recovered"
		}
		b.connects.Add(1)
		b.setState(StateConnected, conn)
		b.log.WithFields(fields).Info(msg)
		attempt = 0

		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
		if !b.watch(conn, closed, blocked) {
			b.setState(StateClosed, nil)
			_ = conn.CloseDeadline(time.Now().Add(b.cfg.CloseTimeout))
			b.log.WithField("state", StateClosed).Info("broker: closed")
			return
		}
		lostAt = time.Now()
		b.losses.Add(1)
	}
}

// watch waits for conn to close (true) or for Close (false), logging the
// broker's flow-control alarms in between.
func (b *Broker) watch(conn *amqp.Connection, closed <-chan *amqp.Error, blocked <-chan amqp.Blocking) bool {
	for {
		select {
		case amqpErr := <-closed:
			b.setState(StateConnecting, nil)
			entry := b.log.WithField("state", StateConnecting)
			if amqpErr != nil {
				entry = entry.WithError(amqpErr)
			}
			entry.Warn("broker: connection lost, reconnecting")
			return true
		case bl, ok := <-blocked:
			if !ok {
				blocked = nil
				continue
			}
			if bl.Active {
				b.log.WithFields(logrus.Fields{"state": "blocked", "reason": bl.Reason}).Warn("broker: publishing blocked by a resource alarm")
			} else {
				b.log.WithField("state", StateConnected).Info("broker: publishing unblocked")
			}
		case <-b.life.Done():
			return false
		}
	}
}

// dial opens a connection and declares the topology on it, within
// Config.DialTimeout for each node and as much again for the declaration,
// and gives up at once on Close.
func (b *Broker) dial() (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(b.cfg.ConnectionName)
	conn, err := within(b.life, func() (*amqp.Connection, error) {
		return b.addrs.dial(func(url string) (*amqp.Connection, error) {
			return amqp.DialConfig(url, amqp.Config{
				Heartbeat:  b.cfg.Heartbeat,
				Properties: props,
				Dial:       amqp.DefaultDial(b.cfg.DialTimeout),
			})
		})
	}, abort)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	ctx, cancel := context.WithTimeout(b.life, b.cfg.DialTimeout)
	defer cancel()
	err = b.declare(ctx, conn)
	b.declared(err)
	if err != nil {
		abort(conn)
		return nil, fmt.Errorf("declare topology: %w", err)
	}
	return conn, nil
}

// declared records the outcome of a declaration of the topology.
func (b *Broker) declared(err error) {
	if err != nil {
		msg := err.Error()
		b.topoErr.Store(&msg)
		return
	}
	b.topoErr.Store(nil)
	b.declarations.Add(1)
}

// declare declares the topology on a channel of its own on conn, within
// ctx.
func (b *Broker) declare(ctx context.Context, conn *amqp.Connection) error {
	_, err := within(ctx, func() (struct{}, error) {
		ch, err := conn.Channel()
		if err != nil {
			return struct{}{}, fmt.Errorf("open channel: %w", err)
		}
		if err := b.cfg.Topology.declare(ch); err != nil {
			return struct{}{}, err // the failed declaration closed the channel
		}
		return struct{}{}, ch.Close()
	}, nil)
	return err
}

// redact hides the URL's password so that the URL can be logged.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
