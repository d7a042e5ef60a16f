package imageworker

import (
	"context"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/logging"
)

// HeaderReplayed says why an operator sent a parked message back to the
// work queue.
const HeaderReplayed = "x-productd-replayed"

// Actions are what an operator does to the image pipeline: run a product's
// images again, and replay the parking lot. Create them with NewActions.
type Actions struct {
	products  productd.ProductService
	broker    *broker.Broker
	publisher *broker.Publisher
	log       *logrus.Entry
}

// NewActions returns Actions that change products through products (the
// service whose writes reach every cache) and move messages on b.
func NewActions(products productd.ProductService, b *broker.Broker, log *logrus.Logger) *Actions {
	return &Actions{products: products, broker: b, publisher: b.NewPublisher(0), log: log.WithField(logging.FieldComponent, "imageworker")}
}

// Close releases the channel the Actions publish on.
func (a *Actions) Close() error { return a.publisher.Close() }

// Reschedule schedules a product's images to be processed again through
// the outbox, whatever their status (a failed product's, typically), and
// records reason on it. A missing product is an ENOTFOUND error, one
// without images an ECONFLICT one.
func (a *Actions) Reschedule(ctx context.Context, productID int64, reason string) error {
	reason = "operator: " + reason
	p, err := a.products.RescheduleImages(ctx, productd.Reschedule{ProductID: productID, Reason: reason})
	if err != nil {
		return err
	}
	a.log.WithFields(logrus.Fields{logging.FieldProductID: productID, "images_version": p.ImagesVersion, "reason": reason}).
		Info("imageworker: images scheduled again")
	return nil
}

// Replayed is what a replay of the parking lot did with the messages it
// took.
type Replayed struct {
	// Rescheduled counts parked image events whose product's images were
	// scheduled again through the outbox.
	Rescheduled int
	// Requeued counts other messages (deletions, unreadable ones) sent back
	// to the work queue.
	Requeued int
	// Dropped counts parked image events that no longer mattered: their
	// product is gone, has newer images, or has them done.
	Dropped int
}

// Moved returns the messages that went back to work.
func (r Replayed) Moved() int { return r.Rescheduled + r.Requeued }

// ReplayParking replays up to limit parked messages for an operator (see
// Replay) and returns how many went back to work.
func (a *Actions) ReplayParking(ctx context.Context, limit int) (int, error) {
	r, err := a.Replay(ctx, limit, "replayed by an operator")
	return r.Moved(), err
}

// Replay takes up to limit messages out of the parking lot, oldest first,
// and sends each back to work with its attempts reset, logging reason. An
// image event is not sent back as it is: its product's images, unless they
// are done or have changed since, are scheduled again through the outbox
// (productd.ProductService's RescheduleImages), which gives them a new
// images version, a fresh count of runs and a new message with no
// attempts; the parked message is then moot. Any other message goes back to
// the work queue with its attempt count at zero. A message that cannot be
// handled now (the database is down) goes back to the parking lot, and the
// replay stops there with the error.
func (a *Actions) Replay(ctx context.Context, limit int, reason string) (Replayed, error) {
	var r Replayed
	topo := a.broker.Topology()
	ch, err := a.broker.Channel(ctx)
	if err != nil {
		return r, fmt.Errorf("replay the parking lot: %w", err)
	}
	// Closing returns a message taken and not settled to the parking lot.
	defer ch.Close() //nolint:errcheck // nothing is left to settle
	for range limit {
		d, ok, err := ch.Get(topo.ParkingQueue, false)
		if err != nil {
			return r, fmt.Errorf("replay the parking lot: take a message: %w", err)
		} else if !ok {
			break
		}
		outcome, err := a.replayOne(ctx, d, reason)
		if err != nil {
			_ = d.Nack(false, true)
			return r, fmt.Errorf("replay the parking lot: message %s: %w", d.MessageId, err)
		}
		if err := d.Ack(false); err != nil {
			return r, fmt.Errorf("replay the parking lot: settle message %s: %w", d.MessageId, err)
		}
		switch outcome {
		case "rescheduled":
			r.Rescheduled++
		case "requeued":
			r.Requeued++
		default:
			r.Dropped++
		}
	}
	a.log.WithFields(logrus.Fields{"rescheduled": r.Rescheduled, "requeued": r.Requeued, "dropped": r.Dropped, "reason": reason}).
		Info("imageworker: parking lot replayed")
	return r, nil
}

// replayOne sends one parked message back to work and says how.
func (a *Actions) replayOne(ctx context.Context, d amqp.Delivery, reason string) (outcome string, err error) {
	log := a.log.WithFields(logrus.Fields{"message_id": d.MessageId, "parked_reason": d.Headers[HeaderReason], "reason": reason})
	if ev, err := decodeEvent(d.Body); err == nil && hasImages(ev) {
		log = log.WithFields(logrus.Fields{logging.FieldEventID: ev.ID, logging.FieldProductID: ev.ProductID})
		_, err := a.products.RescheduleImages(ctx, productd.Reschedule{
			ProductID: ev.ProductID, Reason: "parking lot replay: " + reason, ImagesVersion: ev.ProductVersion,
			From: []productd.ImageStatus{productd.ImageStatusPending, productd.ImageStatusProcessing, productd.ImageStatusFailed},
		})
		switch productd.ErrorCode(err) {
		case "":
			log.Info("imageworker: parked images scheduled again")
			return "rescheduled", nil
		case productd.ENOTFOUND, productd.ECONFLICT:
			log.Info("imageworker: parked message no longer matters; dropped")
			return "dropped", nil
		}
		return "", err
	}
	pub := republish(d, amqp.Table{HeaderAttempt: int64(0), HeaderReplayed: reason})
	delete(pub.Headers, HeaderReason)
	res := a.publisher.Publish(ctx, []broker.Message{{RoutingKey: a.broker.Topology().WorkQueue, Publishing: pub}})
	if !res[0].Published() {
		return "", fmt.Errorf("send it back to the work queue: %w", res[0].Err)
	}
	log.Info("imageworker: parked message sent back to the work queue")
	return "requeued", nil
}
