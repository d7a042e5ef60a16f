package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd/broker"
)

// parked counts the messages waiting in the parking lot: each is an event
// that gave up and waits for an operator to look at it.
func (a *auditor) parked(ctx context.Context, results ...*Result) error {
	res := results[0]
	queue := a.cfg.ParkingQueue
	conn, err := dialAny(ctx, a.cfg.AMQPURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open a channel: %w", err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("read queue %s: %w", queue, err)
	}
	res.checked(1)
	if q.Messages > 0 {
		res.violations(int64(q.Messages), "queue "+queue, fmt.Sprintf("%d messages wait for an operator", q.Messages))
	}
	return nil
}

// dialAny connects to the first node of urls that answers.
func dialAny(ctx context.Context, urls string) (*amqp.Connection, error) {
	var errs []error
	for _, u := range broker.SplitURLs(urls) {
		conn, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("connect to the broker: %w", errors.Join(errs...))
}
