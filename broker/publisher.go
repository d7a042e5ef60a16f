package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
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
	// Unknown: the channel or connection closed, or the wait timed out,
	// before the broker answered. The message may or may not have been
	// routed; publish it again.
	Unknown Outcome = iota
	// Confirmed: the broker acknowledged the message and did not return it.
	Confirmed
	// Returned: the broker could not route the message to any queue
	// (mandatory flag) and returned it.
	Returned
	// Nacked: the broker refused the message, for example because a target
	// queue is full and rejects publishes.
	Nacked
)

func (o Outcome) String() string {
	switch o {
	case Confirmed:
		return "confirmed"
	case Returned:
		return "returned"
	case Nacked:
		return "nacked"
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

// ErrNacked and ErrUnconfirmed are the errors of Nacked and Unknown results;
// a Returned result carries a *ReturnedError.
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
}

// DefaultConfirmTimeout bounds the wait for a batch's confirmations when the
// caller's context has no earlier deadline.
const DefaultConfirmTimeout = 30 * time.Second

// NewPublisher returns a Publisher on b's connections. confirmTimeout bounds
// the wait for a batch's confirmations (DefaultConfirmTimeout when zero); a
// batch that times out closes the channel, so that no late answer can be
// mistaken for a later batch's.
func (b *Broker) NewPublisher(confirmTimeout time.Duration) *Publisher {
	if confirmTimeout <= 0 {
		confirmTimeout = DefaultConfirmTimeout
	}
	return &Publisher{b: b, confirmAfter: confirmTimeout}
}

// Ready opens the Publisher's channel if it has none, waiting for the broker
// until ctx ends. Calling it before taking any lock that Publish would hold
// keeps an unreachable broker from holding that lock.
func (p *Publisher) Ready(ctx context.Context) error {
	_, err := p.channel(ctx)
	return err
}

// Close closes the Publisher's channel.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return nil
	}
	err := p.cur.ch.Close()
	p.cur = nil
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}

// Publish sends msgs and waits for all of their confirmations together. It
// returns one Result per message, in order. It never returns early for one
// message's failure: a batch whose channel dies half-way reports the
// messages the broker answered for as such and the rest as Unknown.
func (p *Publisher) Publish(ctx context.Context, msgs []Message) []Result {
	results := make([]Result, len(msgs))
	if len(msgs) == 0 {
		return results
	}
	ctx, cancel := context.WithTimeout(ctx, p.confirmAfter)
	defer cancel()

	cc, err := p.channel(ctx)
	if err != nil {
		return fillUnknown(results, 0, err)
	}
	ids := make([]string, len(msgs))
	pending := make([]*amqp.DeferredConfirmation, len(msgs))
	sent := 0
	for i := range msgs {
		m := &msgs[i]
		pub := m.Publishing
		pub.DeliveryMode = amqp.Persistent
		if pub.MessageId == "" {
			pub.MessageId = uuid.NewString()
		}
		ids[i] = pub.MessageId
		dc, err := cc.ch.PublishWithDeferredConfirmWithContext(ctx, m.Exchange, m.RoutingKey, true, false, pub)
		if err != nil {
			p.discard(cc)
			fillUnknown(results, i, fmt.Errorf("publish: %w", err))
			break
		}
		pending[i] = dc
		sent++
	}

	timedOut := false
	for i := 0; i < sent; i++ {
		select {
		case <-pending[i].Done():
		case <-ctx.Done():
			timedOut = true
		}
		if timedOut {
			break
		}
	}
	returned := cc.takeReturns(ctx, ids[:sent])
	for i := 0; i < sent; i++ {
		results[i] = resultOf(pending[i], returned[ids[i]], cc.ch, msgs[i])
	}
	if timedOut {
		// Late confirmations must not count for a later batch: the next one
		// starts on a fresh channel.
		p.discard(cc)
	}
	return results
}

func resultOf(dc *amqp.DeferredConfirmation, ret *amqp.Return, ch *amqp.Channel, m Message) Result {
	select {
	case <-dc.Done():
	default:
		return Result{Outcome: Unknown, Err: fmt.Errorf("%w: timed out", ErrUnconfirmed)}
	}
	switch {
	case dc.Acked() && ret != nil:
		return Result{Outcome: Returned, Err: &ReturnedError{
			Exchange: m.Exchange, RoutingKey: m.RoutingKey, ReplyCode: ret.ReplyCode, ReplyText: ret.ReplyText,
		}}
	case dc.Acked():
		return Result{Outcome: Confirmed}
	case ch.IsClosed():
		// A closing channel resolves every pending confirmation as a nack;
		// the broker never said anything about these messages.
		return Result{Outcome: Unknown, Err: fmt.Errorf("%w: channel closed", ErrUnconfirmed)}
	default:
		return Result{Outcome: Nacked, Err: ErrNacked}
	}
}

func fillUnknown(results []Result, from int, err error) []Result {
	for i := from; i < len(results); i++ {
		results[i] = Result{Outcome: Unknown, Err: fmt.Errorf("%w: %w", ErrUnconfirmed, err)}
	}
	return results
}

// channel returns the current confirm channel, opening one if needed.
func (p *Publisher) channel(ctx context.Context) (*confirmChannel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil && !p.cur.ch.IsClosed() {
		return p.cur, nil
	}
	p.cur = nil
	ch, err := p.b.Channel(ctx)
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("put channel in confirm mode: %w", err)
	}
	p.cur = newConfirmChannel(ch)
	return p.cur, nil
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

// confirmChannel is a channel in confirm mode and the messages it had
// returned, by message id.
type confirmChannel struct {
	ch   *amqp.Channel
	sync chan chan struct{}
	done chan struct{}

	mu       sync.Mutex
	returned map[string]*amqp.Return
}

func newConfirmChannel(ch *amqp.Channel) *confirmChannel {
	cc := &confirmChannel{
		ch:       ch,
		sync:     make(chan chan struct{}),
		done:     make(chan struct{}),
		returned: map[string]*amqp.Return{},
	}
	go cc.collectReturns(ch.NotifyReturn(make(chan amqp.Return)))
	return cc
}

// collectReturns records returned messages until the channel closes. The
// broker sends a message's return before its ack, and the library hands it
// over before resolving the ack; a sync request is served only after every
// return received before it has been recorded, so that a publisher that saw
// its acks and then syncs sees their returns too.
func (cc *confirmChannel) collectReturns(returns <-chan amqp.Return) {
	defer close(cc.done)
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				return
			}
			cc.mu.Lock()
			cc.returned[r.MessageId] = &r
			cc.mu.Unlock()
		case reply := <-cc.sync:
			close(reply)
		}
	}
}

// takeReturns waits until every return sent so far is recorded, then removes
// and returns those of ids.
func (cc *confirmChannel) takeReturns(ctx context.Context, ids []string) map[string]*amqp.Return {
	reply := make(chan struct{})
	select {
	case cc.sync <- reply:
		<-reply
	case <-cc.done: // closed: everything it received is recorded
	case <-ctx.Done():
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	out := map[string]*amqp.Return{}
	for _, id := range ids {
		if r, ok := cc.returned[id]; ok {
			out[id] = r
			delete(cc.returned, id)
		}
	}
	return out
}
