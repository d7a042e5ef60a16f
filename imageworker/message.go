package imageworker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd"
)

// decodeEvent reads a message body. A body that is not an event of the
// schema version this worker knows is refused rather than guessed at.
func decodeEvent(body []byte) (productd.Event, error) {
	var ev productd.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return ev, fmt.Errorf("the message is not an event: %v", err)
	}
	if ev.SchemaVersion != productd.EventSchemaVersion {
		return ev, fmt.Errorf("the event has schema_version %d; this worker reads version %d", ev.SchemaVersion, productd.EventSchemaVersion)
	}
	if ev.ProductID <= 0 || ev.ID == "" {
		return ev, fmt.Errorf("the event has no event_id or product_id")
	}
	return ev, nil
}

// attemptOf returns how many transient failures d has had, from the header
// the worker sets when it schedules a retry.
func attemptOf(d amqp.Delivery) int {
	return int(intHeader(d.Headers, HeaderAttempt))
}

// deliveryCount returns how many times the work queue has delivered d
// before without an ack: RabbitMQ's x-delivery-count on quorum queues.
func deliveryCount(d amqp.Delivery) int64 {
	return intHeader(d.Headers, "x-delivery-count")
}

func intHeader(h amqp.Table, name string) int64 {
	switch v := h[name].(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case int16:
		return int64(v)
	case int8:
		return int64(v)
	case int:
		return int64(v)
	}
	return 0
}

// republish copies d into a new message with extra headers. The broker's
// own bookkeeping headers (x-death, x-delivery-count, ...) stay behind:
// they describe the old message's journey, not the new one's.
func republish(d amqp.Delivery, extra amqp.Table) amqp.Publishing {
	headers := amqp.Table{}
	for k, v := range d.Headers {
		if !strings.HasPrefix(k, "x-") || strings.HasPrefix(k, "x-productd-") {
			headers[k] = v
		}
	}
	for k, v := range extra {
		headers[k] = v
	}
	return amqp.Publishing{
		Headers:       headers,
		ContentType:   d.ContentType,
		MessageId:     d.MessageId,
		CorrelationId: d.CorrelationId,
		Timestamp:     d.Timestamp,
		Type:          d.Type,
		AppId:         d.AppId,
		Body:          d.Body,
	}
}

// permanent reports whether err will fail again however often it is
// retried: the input itself is wrong.
func permanent(err error) bool {
	switch productd.ErrorCode(err) {
	case productd.EUNPROCESSABLE, productd.EUNSUPPORTED, productd.ETOOLARGE, productd.ENOTFOUND, productd.EINVALID:
		return true
	}
	return false
}

// reasonOf is the image_error and parking reason for err after attempts
// tries (0 for a permanent failure): which image failed and why, in words
// meant for the product's owner, never internal details.
func reasonOf(err error, attempts int) string {
	var ie *imageError
	reason := productd.ErrorMessage(err)
	if errors.As(err, &ie) {
		reason = ie.Error()
	}
	if attempts > 0 {
		reason += fmt.Sprintf(" (gave up after %d attempts)", attempts)
	}
	return reason
}
