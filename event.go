package productd

import "time"

// EventSchemaVersion is the version of the Event JSON layout. Consumers refuse
// versions they do not know rather than guess.
const EventSchemaVersion = 1

// EventType names what happened to a product. It doubles as the AMQP routing
// key of the event's message.
type EventType string

// The product events. Each is committed to the outbox in the same
// transaction as the change it announces.
const (
	EventProductCreated       EventType = "product.created"
	EventProductImagesChanged EventType = "product.images_changed"
	EventProductDeleted       EventType = "product.deleted"
)

// Event is the payload of an outbox row and of the AMQP message the relay
// publishes for it. The ID is the message id, so a redelivered message can be
// recognised. ProductVersion is the product's Version when the event was
// written; for created and images-changed events it is also the product's
// ImagesVersion, which lets the image worker drop stale events.
type Event struct {
	SchemaVersion  int       `json:"schema_version"`
	ID             string    `json:"event_id"`
	Type           EventType `json:"type"`
	ProductID      int64     `json:"product_id"`
	ProductVersion int64     `json:"product_version"`
	// Images are the product's original image URLs at ProductVersion; for a
	// ProductDeleted event, the images it had.
	Images []string `json:"images"`
	// RemoveObjects are the storage keys of uploads the product owned and
	// the change released (images dropped by an ImagesChanged event, all of
	// them for a ProductDeleted one): no product owns them any more, so the
	// consumer removes them. Compressed images need no list: they live under
	// the product's own prefix.
	RemoveObjects []string  `json:"remove_objects,omitempty"`
	OccurredAt    time.Time `json:"occurred_at"`
}
