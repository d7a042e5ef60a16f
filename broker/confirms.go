package broker

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
)

// HeaderPublishTag is the header in which a Publisher writes each message's
// delivery tag on its channel. A returned message carries its headers back,
// so the tag pairs the return with the one publication it belongs to, even
// among messages that share a message id.
const HeaderPublishTag = "x-productd-publish-tag"

// answerBuffer is the room of the channels on which amqp091 hands over
// returns and confirmations. amqp091 delivers both from the connection's one
// reader goroutine and drops a notification that waits more than five
// seconds for room; with a buffer, and a collector that only updates maps,
// none ever waits.
const answerBuffer = 1024

// confirmChannel is a channel in confirm mode, the publications on it that
// await an answer, and the goroutine that pairs the broker's answers with
// them.
//
// The pairing is exact because of the order in which answers arrive. The
// broker sends a message's basic.return before the basic.ack that covers
// it, on the same channel; amqp091 hands both over from one goroutine, the
// return first. collect receives both and, before it applies a
// confirmation, takes every return already handed over: by then the return
// of the confirmed message, if there is one, is among them. An outcome is
// therefore decided once, with everything the broker said about the
// message, and a batch that stops waiting reads only decided outcomes.
type confirmChannel struct {
	ch *amqp.Channel
	b  *Broker

	// send serialises publishing, so that the tag read before a publication
	// is the one the channel gives it. It is a channel so that waiting for
	// it ends with the batch's context.
	send chan struct{}

	mu       sync.Mutex
	pending  map[uint64]slot         // by delivery tag: publications awaiting their confirmation
	returned map[uint64]*amqp.Return // by delivery tag: returns awaiting their confirmation
}

// slot is one message of a batch.
type slot struct {
	bt *batch
	i  int
	m  *Message
}

// batch is the messages of one Publish call and their outcomes so far,
// guarded by the confirmChannel's mu.
type batch struct {
	results   []Result
	settled   []bool
	tags      []uint64 // delivery tag of each message; 0 until sent
	left      int      // messages without an outcome
	abandoned bool     // the caller stopped waiting: send no more
	done      chan struct{}
}

func newBatch(n int) *batch {
	return &batch{
		results: make([]Result, n),
		settled: make([]bool, n),
		tags:    make([]uint64, n),
		left:    n,
		done:    make(chan struct{}),
	}
}

func newConfirmChannel(b *Broker, ch *amqp.Channel) *confirmChannel {
	cc := &confirmChannel{
		ch:       ch,
		b:        b,
		send:     make(chan struct{}, 1),
		pending:  map[uint64]slot{},
		returned: map[uint64]*amqp.Return{},
	}
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	returns := ch.NotifyReturn(make(chan amqp.Return, answerBuffer))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, answerBuffer))
	go cc.collect(confirms, returns, closes)
	return cc
}

// publish sends bt's msgs, registering each before it is sent so that no
// answer can come before its message is known, and stops early when bt is
// abandoned. It returns false when the channel refused a message: the rest
// of the batch is Unknown, and the channel is no longer usable.
func (cc *confirmChannel) publish(ctx context.Context, bt *batch, msgs []Message) bool {
	select {
	case cc.send <- struct{}{}:
	case <-ctx.Done():
		cc.settleRest(bt, 0, fmt.Errorf("wait for the channel: %w", ctx.Err()))
		return true
	}
	defer func() { <-cc.send }()
	for i := range msgs {
		m := &msgs[i]
		pub := m.Publishing
		pub.DeliveryMode = amqp.Persistent
		if pub.MessageId == "" {
			pub.MessageId = uuid.NewString()
		}
		tag := cc.ch.GetNextPublishSeqNo()
		pub.Headers = make(amqp.Table, len(m.Publishing.Headers)+1)
		for k, v := range m.Publishing.Headers {
			pub.Headers[k] = v
		}
		pub.Headers[HeaderPublishTag] = int64(tag)

		cc.mu.Lock()
		if bt.abandoned {
			cc.mu.Unlock()
			return true
		}
		bt.tags[i] = tag
		cc.pending[tag] = slot{bt: bt, i: i, m: m}
		cc.mu.Unlock()

		dc, err := cc.ch.PublishWithDeferredConfirmWithContext(ctx, m.Exchange, m.RoutingKey, true, false, pub)
		if err == nil && (dc == nil || dc.DeliveryTag != tag) {
			err = fmt.Errorf("channel gave message %d another delivery tag than %d", i, tag)
		}
		if err != nil {
			cc.settleRest(bt, i, fmt.Errorf("publish: %w", err))
			return false
		}
	}
	return true
}

// settleRest settles bt's messages from the from-th on as Unknown, those not
// settled yet.
func (cc *confirmChannel) settleRest(bt *batch, from int, err error) {
	unsent := Result{Outcome: Unknown, Err: fmt.Errorf("%w: %w", ErrUnconfirmed, err)}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for i := from; i < len(bt.results); i++ {
		if s, ok := cc.pending[bt.tags[i]]; ok && s.bt == bt {
			delete(cc.pending, bt.tags[i])
		}
		bt.settle(i, unsent)
	}
}

// collect pairs the broker's answers with their publications until the
// channel closes, then settles whatever is left as Unknown.
func (cc *confirmChannel) collect(confirms <-chan amqp.Confirmation, returns <-chan amqp.Return, closes <-chan *amqp.Error) {
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			cc.recordReturn(r)
		case c, ok := <-confirms:
			if !ok {
				var reason *amqp.Error
				select {
				case reason = <-closes:
				default:
				}
				cc.closeAll(reason)
				if reason != nil && reason.Recover {
					// A channel-level error (a missing exchange, say) closed
					// the channel while the connection stays up.
					cc.b.Repair("publishing channel closed: " + reason.Error())
				}
				return
			}
			// Every return handed over before this confirmation is in the
			// buffer now; the confirmed message's own return, if any, is
			// among them.
			for more := returns != nil; more; {
				select {
				case r, ok := <-returns:
					if !ok {
						returns, more = nil, false
						continue
					}
					cc.recordReturn(r)
				default:
					more = false
				}
			}
			cc.confirm(c)
		}
	}
}

func (cc *confirmChannel) recordReturn(r amqp.Return) {
	if r.ReplyCode == amqp.NoRoute && cc.b.cfg.Topology.Routes(r.Exchange, r.RoutingKey) {
		cc.b.Repair(fmt.Sprintf("a message to exchange %q with key %q had no route", r.Exchange, r.RoutingKey))
	}
	tag, ok := r.Headers[HeaderPublishTag].(int64)
	if !ok {
		return // not published by this channel's Publisher: nothing to pair it with
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if _, ok := cc.pending[uint64(tag)]; ok {
		cc.returned[uint64(tag)] = &r
	}
}

func (cc *confirmChannel) confirm(c amqp.Confirmation) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	s, ok := cc.pending[c.DeliveryTag]
	ret := cc.returned[c.DeliveryTag]
	delete(cc.pending, c.DeliveryTag)
	delete(cc.returned, c.DeliveryTag)
	if !ok {
		return // its batch stopped waiting
	}
	switch {
	case !c.Ack:
		s.bt.settle(s.i, Result{Outcome: Nacked, Err: ErrNacked})
	case ret != nil:
		s.bt.settle(s.i, Result{Outcome: Returned, Err: &ReturnedError{
			Exchange: s.m.Exchange, RoutingKey: s.m.RoutingKey, ReplyCode: ret.ReplyCode, ReplyText: ret.ReplyText,
		}})
	default:
		s.bt.settle(s.i, Result{Outcome: Confirmed})
	}
}

// closeAll settles every publication still waiting: the channel closed
// before the broker answered for it.
func (cc *confirmChannel) closeAll(reason *amqp.Error) {
	err := fmt.Errorf("%w: channel closed", ErrUnconfirmed)
	if reason != nil {
		err = fmt.Errorf("%w: channel closed: %w", ErrUnconfirmed, reason)
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for tag, s := range cc.pending {
		s.bt.settle(s.i, Result{Outcome: Unknown, Err: err})
		delete(cc.pending, tag)
	}
	clear(cc.returned)
}

// abandon settles bt's messages still waiting: those sent as TimedOut, the
// others as Unknown. Answers that arrive later are ignored, and no more of
// bt's messages are sent.
func (cc *confirmChannel) abandon(bt *batch) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	bt.abandoned = true
	for i, tag := range bt.tags {
		if s, ok := cc.pending[tag]; ok && s.bt == bt {
			delete(cc.pending, tag)
			delete(cc.returned, tag)
			bt.settle(i, Result{Outcome: TimedOut, Err: fmt.Errorf("%w: timed out", ErrUnconfirmed)})
		} else if tag == 0 {
			bt.settle(i, Result{Outcome: Unknown, Err: fmt.Errorf("%w: not sent before the deadline", ErrUnconfirmed)})
		}
	}
}

// results returns a copy of bt's outcomes.
func (cc *confirmChannel) results(bt *batch) []Result {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return append([]Result(nil), bt.results...)
}

// settle records message i's outcome, unless it has one. The caller holds
// the confirmChannel's mu.
func (bt *batch) settle(i int, r Result) {
	if bt.settled[i] {
		return
	}
	bt.settled[i], bt.results[i] = true, r
	bt.left--
	if bt.left == 0 {
		close(bt.done)
	}
}
