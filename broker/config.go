package broker

import (
	"errors"
	"time"
)

// Config is the broker connection's settings. Zero fields take the default
// given in their comment.
type Config struct {
	// URL is the AMQP URL, e.g. amqp://guest:guest@127.0.0.1:5672/. Required.
	// A comma-separated list of URLs names the nodes of a cluster: a
	// connection attempt tries each in turn, and a reconnection starts with
	// the node after the one it was connected to (see SplitURLs).
	URL string

	// Topology names the exchanges and queues declared on every connection.
	Topology Topology

	// ConnectionName is shown in the management UI. Default "productd".
	ConnectionName string

	// DialTimeout bounds one connection attempt, handshake included.
	// Default 5s.
	DialTimeout time.Duration

	// Heartbeat is the AMQP heartbeat interval; a peer silent for three of
	// them is taken as gone. Default 10s.
	Heartbeat time.Duration

	// ReconnectMin and ReconnectMax bound the wait between connection
	// attempts: it starts at ReconnectMin, doubles after every failure up to
	// ReconnectMax, and carries up to 50% jitter so that many processes do
	// not reconnect in step. Defaults 100ms and 5s.
	ReconnectMin time.Duration
	ReconnectMax time.Duration

	// CloseTimeout bounds every wait for the broker to agree to a close: of
	// the connection (Close), of a Publisher's channel (Publisher.Close), of
	// a consumer's channel when Consume ends. Past it the close goes on
	// without the broker, so that a shutdown finishes whatever the broker
	// does. Zero means DefaultCloseTimeout (2s).
	CloseTimeout time.Duration

	// RepairDelay is how long the broker waits, once it finds part of the
	// topology missing on a live connection (a message of the topology
	// returned as unroutable, a channel closed by the broker, a consumer's
	// queue deleted), before it declares the topology again. RabbitMQ 3.10
	// does not tell the consumers of a deleted quorum queue that it is gone
	// when it is declared again within a few tens of milliseconds: they stay
	// subscribed to nothing. Waiting lets every consumer, in every process,
	// learn of the deletion and subscribe again. Zero means
	// DefaultRepairDelay (1s).
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

// withDefaults returns c with its zero fields set and its topology resolved.
func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		return Config{}, errors.New("broker: no URL")
	}
	if c.ConnectionName == "" {
		c.ConnectionName = DefaultConnectionName
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.RepairDelay <= 0 {
		c.RepairDelay = DefaultRepairDelay
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	topo, err := c.Topology.Resolve()
	if err != nil {
		return Config{}, err
	}
	c.Topology = topo
	return c, nil
}
