package broker

import (
	"context"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// within runs fn, a call of amqp091 that takes no context (opening a
// channel, a declaration, a close), and waits for it until ctx ends. When
// ctx ends first it returns ctx's error at once: fn carries on in the
// background until the broker answers or the connection dies (its heartbeat
// or Close ends it), and what fn returns then goes to abandon, which closes
// what fn opened. A broker that stops answering, behind a black-holed
// network or under a resource alarm, thus holds a goroutine, never a
// caller.
func within[T any](ctx context.Context, fn func() (T, error), abandon func(T)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil && abandon != nil {
				abandon(r.v)
			}
		}()
		return zero, ctx.Err()
	}
}

// closeChannel closes ch, waiting at most Config.CloseTimeout for the
// broker's answer. A channel already closed is no error.
func (b *Broker) closeChannel(ch *amqp.Channel) error {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.CloseTimeout)
	defer cancel()
	_, err := within(ctx, func() (struct{}, error) { return struct{}{}, ch.Close() }, nil)
	return err
}

// abort closes conn at once, without waiting for the broker to agree.
func abort(conn *amqp.Connection) {
	_ = conn.CloseDeadline(time.Now())
}
