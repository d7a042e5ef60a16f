package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Message is one message to publish: where to, and the AMQP message itself.
type Message struct {
	Exchange   string
	RoutingKey string
	// Publishing is sent as given, except that a Publisher makes it
	// persistent and gives it a random MessageId when it has none: the
	// message id is how a returned message is matched to its publication.
	Publishing amqp.Publishing
}

// Outcome is what became of one published message.
type Outcome int

// The outcomes of a publication. Only Confirmed means the broker has taken
// responsibility for the message.
const (
	// Unknown: the channel or connection closed before the broker
	// answered, or the message could not be sent. The message may or may not
	// have been routed; publish it again.
	Unknown Outcome = iota
	// Confirmed: the broker acknowledged the message and did not return it.
	Confirmed
	// Returned: the broker could not route the message to any queue
	// (mandatory flag) and returned it.
	Returned
	// Nacked: the broker refused the message, for example because a target
	// queue is full and rejects publishes.
	Nacked
	// TimedOut: the broker had not answered when the wait for the batch's
	// confirmations ended. As with Unknown, the message may or may not have
	// been routed.
	TimedOut
)

func (o Outcome) String() string {
	switch o {
	case Confirmed:
		return "confirmed"
	case Returned:
		return "returned"
	case Nacked:
		return "nacked"
	case TimedOut:
		return "timed out"
	default:
		return "unknown"
	}
}

// Result is the outcome of one message of a batch, with an error saying why
// for every outcome but Confirmed.
type Result struct {
	Outcome Outcome
	Err     error
}

// Published reports whether the message is safely with the broker.
func (r Result) Published() bool { return r.Outcome == Confirmed }

// Unanswered reports whether the broker said nothing about the message
// (Unknown or TimedOut): it may or may not have it.
func (r Result) Unanswered() bool { return r.Outcome == Unknown || r.Outcome == TimedOut }

// ErrNacked and ErrUnconfirmed are the errors of Nacked, and of Unknown and
// TimedOut results; a Returned result carries a *ReturnedError.
var (
	ErrNacked      = errors.New("broker refused the message (nack)")
	ErrUnconfirmed = errors.New("no confirmation from the broker")
)

// ReturnedError is the error of a Returned result.
type ReturnedError struct {
	Exchange   string
	RoutingKey string
	ReplyCode  uint16
	ReplyText  string
}

func (e *ReturnedError) Error() string {
	return fmt.Sprintf("message returned as unroutable by exchange %q with key %q: %d %s",
		e.Exchange, e.RoutingKey, e.ReplyCode, e.ReplyText)
}

// Publisher publishes batches of messages with publisher confirms on a
// channel of its own, which it opens on first use and replaces after it
// dies. Every message is mandatory and persistent. A Publisher is safe for
// concurrent use: batches published at once share the channel and wait for
// their confirmations independently.
type Publisher struct {
	b            *Broker
	confirmAfter time.Duration

	mu  sync.Mutex
	cur *confirmChannel
	// opening is held by the caller that opens a channel, so that the
	// others wait for its channel rather than open their own; unlike a
	// mutex, waiting for it ends with the waiter's context.
	opening chan struct{}

	outcomes [TimedOut + 1]atomic.Int64
}

// PublishStats count a Publisher's messages by outcome since it was created.
type PublishStats struct {
	Confirmed int64
	Returned  int64
	Nacked    int64
	TimedOut  int64
	Unknown   int64
}

// DefaultConfirmTimeout bounds the wait for a batch's confirmations when the
// caller's context has no earlier deadline.
const DefaultConfirmTimeout = 30 * time.Second

// NewPublisher returns a Publisher on b's connections. confirmTimeout bounds
// the wait for a batch's confirmations (DefaultConfirmTimeout when zero or
// negative); a batch that times out closes the channel, so that the next
// batch does not queue behind a channel the broker stopped answering on.
func (b *Broker) NewPublisher(confirmTimeout time.Duration) *Publisher {
	confirmTimeout = cmp.Or(max(confirmTimeout, 0), DefaultConfirmTimeout)
	return &Publisher{b: b, confirmAfter: confirmTimeout, opening: make(chan struct{}, 1)}
}

// Stats returns the Publisher's counts of outcomes.
func (p *Publisher) Stats() PublishStats {
	return PublishStats{
		Confirmed: p.outcomes[Confirmed].Load(),
		Returned:  p.outcomes[Returned].Load(),
		Nacked:    p.outcomes[Nacked].Load(),
		TimedOut:  p.outcomes[TimedOut].Load(),
		Unknown:   p.outcomes[Unknown].Load(),
	}
}

// Ready opens the Publisher's channel if it has none, waiting for the broker
// until ctx ends, and no longer: neither an unreachable broker nor one that
// stops answering holds it past ctx.
func (p *Publisher) Ready(ctx context.Context) error {
	_, err := p.channel(ctx)
	return err
}

// Close closes the Publisher's channel, waiting at most the Broker's
// Config.CloseTimeout for the broker to agree. A Publisher used after Close
// opens a new channel.
func (p *Publisher) Close() error {
	p.mu.Lock()
	cc := p.cur
	p.cur = nil
	p.mu.Unlock()
	if cc == nil {
		return nil
	}
	if err := p.b.closeChannel(cc.ch); err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("close publishing channel: %w", err)
	}
	return nil
}

// Publish sends msgs and waits for all of their confirmations together. It
// returns one Result per message, in order. It never returns early for one
// message's failure: a batch whose channel dies half-way reports the
// messages the broker answered for as such and the rest as Unknown, and a
// batch still waiting when its time is up reports the rest as TimedOut.
func (p *Publisher) Publish(ctx context.Context, msgs []Message) []Result {
	if len(msgs) == 0 {
		return []Result{}
	}
	ctx, cancel := context.WithTimeout(ctx, p.confirmAfter)
	defer cancel()

	var results []Result
	cc, err := p.channel(ctx)
	if err != nil {
		results = make([]Result, len(msgs))
		fillUnknown(results, 0, err)
	} else {
		bt := newBatch(len(msgs))
		// Sending can block too (a broker under a resource alarm stops
		// reading): the batch waits for its answers or its deadline, not
		// for the sending.
		go func() {
			if !cc.publish(ctx, bt, msgs) {
				p.discard(cc)
			}
		}()
		select {
		case <-bt.done:
		case <-ctx.Done():
			cc.abandon(bt)
			// The broker stopped answering on this channel, or answers
			// slower than the caller can wait: the next batch starts on a
			// fresh one.
			p.discard(cc)
		}
		results = cc.results(bt)
	}
	for _, r := range results {
		p.outcomes[r.Outcome].Add(1)
	}
	return results
}

func fillUnknown(results []Result, from int, err error) []Result {
	for i := from; i < len(results); i++ {
		results[i] = Result{Outcome: Unknown, Err: fmt.Errorf("%w: %w", ErrUnconfirmed, err)}
	}
	return results
}

// channel returns the current confirm channel, opening one if needed. No
// lock is held while the broker is asked for anything.
func (p *Publisher) channel(ctx context.Context) (*confirmChannel, error) {
	if cc := p.current(); cc != nil {
		return cc, nil
	}
	select {
	case p.opening <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the publishing channel: %w", ctx.Err())
	}
	defer func() { <-p.opening }()
	if cc := p.current(); cc != nil {
		return cc, nil // opened by the caller this one waited for
	}
	ch, err := p.b.Channel(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := within(ctx, func() (struct{}, error) { return struct{}{}, ch.Confirm(false) }, nil); err != nil {
		go ch.Close() //nolint:errcheck // the channel is abandoned either way
		return nil, fmt.Errorf("put channel in confirm mode: %w", err)
	}
	cc := newConfirmChannel(p.b, ch)
	p.mu.Lock()
	p.cur = cc
	p.mu.Unlock()
	return cc, nil
}

// current returns the open confirm channel, or nil.
func (p *Publisher) current() *confirmChannel {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil && p.cur.ch.IsClosed() {
		p.cur = nil
	}
	return p.cur
}

// discard forgets cc if it is still the current channel and closes it in
// the background: closing waits for the broker's answer, which is what is
// late.
func (p *Publisher) discard(cc *confirmChannel) {
	p.mu.Lock()
	if p.cur == cc {
		p.cur = nil
	}
	p.mu.Unlock()
	go cc.ch.Close() //nolint:errcheck // the channel is abandoned either way
}
