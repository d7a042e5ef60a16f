package broker

import (
	"cmp"
	"errors"
	"time"

	"github.com/productd/productd/internal/settings"
)

// Config is the broker connection's settings. URL is required; every zero
// field takes the default its comment names.
type Config struct {
	// URL is the AMQP URL, e.g. amqp://guest:guest@127.0.0.1:5672/. Required.
	// A comma-separated list of URLs names the nodes of a cluster: a
	// connection attempt tries each in turn, and a reconnection starts with
	// the node after the one it was connected to (see SplitURLs).
	URL string

	// Topology names the exchanges and queues declared on every connection.
	Topology Topology

	// ConnectionName is shown in the management UI. Zero means
	// DefaultConnectionName ("productd").
	ConnectionName string

	// DialTimeout bounds one connection attempt, handshake included. Zero
	// means DefaultDialTimeout (5 s).
	DialTimeout time.Duration

	// Heartbeat is the AMQP heartbeat interval; a peer silent for three of
	// them is taken as gone. Zero means DefaultHeartbeat (10 s).
	Heartbeat time.Duration

	// ReconnectMin and ReconnectMax bound the wait between connection
	// attempts: it starts at ReconnectMin, doubles after every failure up to
	// ReconnectMax, and carries up to 50% jitter so that many processes do
	// not reconnect in step; a ReconnectMax under ReconnectMin is taken as
	// ReconnectMin. Zero means DefaultReconnectMin (100 ms) and
	// DefaultReconnectMax (5 s).
	ReconnectMin time.Duration
	ReconnectMax time.Duration

	// CloseTimeout bounds every wait for the broker to agree to a close: of
	// the connection (Close), of a Publisher's channel (Publisher.Close), of
	// a consumer's channel when Consume ends. Past it the close goes on
	// without the broker, so that a shutdown finishes whatever the broker
	// does. Zero means DefaultCloseTimeout (2 s).
	CloseTimeout time.Duration

	// RepairDelay is how long the broker waits, once it finds part of the
	// topology missing on a live connection (a message of the topology
	// returned as unroutable, a channel closed by the broker, a consumer's
	// queue deleted), before it declares the topology again. RabbitMQ 3.10
	// does not tell the consumers of a deleted quorum queue that it is gone
	// when it is declared again within a few tens of milliseconds: they stay
	// subscribed to nothing. Waiting lets every consumer, in every process,
	// learn of the deletion and subscribe again. Zero means
	// DefaultRepairDelay (1 s).
	RepairDelay time.Duration
}

// Defaults of Config.
const (
	DefaultConnectionName = "productd"
	DefaultDialTimeout    = 5 * time.Second
	DefaultHeartbeat      = 10 * time.Second
	DefaultReconnectMin   = 100 * time.Millisecond
	DefaultReconnectMax   = 5 * time.Second
	DefaultCloseTimeout   = 2 * time.Second
	DefaultRepairDelay    = time.Second
)

// withDefaults returns c with every zero field set to its default. The
// topology is resolved by New, which can fail on it.
func (c Config) withDefaults() Config {
	c.ConnectionName = cmp.Or(c.ConnectionName, DefaultConnectionName)
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	c.Heartbeat = cmp.Or(c.Heartbeat, DefaultHeartbeat)
	c.ReconnectMin = cmp.Or(c.ReconnectMin, DefaultReconnectMin)
	c.ReconnectMax = cmp.Or(c.ReconnectMax, DefaultReconnectMax)
	c.CloseTimeout = cmp.Or(c.CloseTimeout, DefaultCloseTimeout)
	c.RepairDelay = cmp.Or(c.RepairDelay, DefaultRepairDelay)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	if c.URL == "" {
		return errors.New("broker: Config.URL is required")
	}
	return settings.NonNegative("broker", settings.F("DialTimeout", c.DialTimeout), settings.F("Heartbeat", c.Heartbeat),
		settings.F("ReconnectMin", c.ReconnectMin), settings.F("ReconnectMax", c.ReconnectMax),
		settings.F("CloseTimeout", c.CloseTimeout), settings.F("RepairDelay", c.RepairDelay))
}
