package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/internal/settings"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/ops/internal/parkinglog"
	"github.com/productd/productd/ops/internal/rabbitmgmt"
)

// ImageActions re-run images and replay the parking lot; the image
// pipeline provides them.
type ImageActions interface {
	// Reschedule schedules product id's images again, with reason.
	Reschedule(ctx context.Context, productID int64, reason string) error
	// ReplayParking moves up to limit parked messages back to the work
	// queue and returns how many it moved.
	ReplayParking(ctx context.Context, limit int) (int, error)
}

// Config is the Console's dependencies and settings. Pool, AMQPURL and Log
// are required.
type Config struct {
	// Pool is the database of the deployment.
	Pool *pgxpool.Pool
	// AMQPURL is the broker's AMQP URL (the first of a list is used for the
	// management API).
	AMQPURL string
	// ManagementURL is the broker's management API; empty means port 15672
	// on AMQPURL's host with its credentials.
	ManagementURL string
	// Topology names the queues; its zero value is productd's defaults.
	Topology broker.Topology
	// Broker, when set, is used to keep and read the parking log. Without
	// it the newest parked messages are not shown.
	Broker *broker.Broker
	// Cache, when set, returns this process's cache counters.
	Cache func() cache.Stats
	// Storage, when set, checks that object storage answers.
	Storage func(ctx context.Context) error
	// Images, when set, re-runs products' images and replays the parking
	// lot; without it those actions answer that they are unavailable.
	Images ImageActions
	// Log receives one line per action. Required.
	Log *logrus.Logger

	// StaleAfter is how old a relay's status row may be before the relay
	// counts as gone. Zero means DefaultStaleAfter (10 s).
	StaleAfter time.Duration
	// PileUpAge is how long work may wait at a stage before the stage is
	// shown as piling up. Zero means DefaultPileUpAge (30 s).
	PileUpAge time.Duration
	// ParkedRefresh is how often Run reads the parking log. Zero means
	// DefaultParkedRefresh (2 s).
	ParkedRefresh time.Duration
	// ListLimit bounds every list the console shows (dead rows, retries,
	// parked messages, failures). Zero means DefaultListLimit (20).
	ListLimit int
}

// Defaults of Config.
const (
	DefaultStaleAfter    = 10 * time.Second
	DefaultPileUpAge     = 30 * time.Second
	DefaultListLimit     = 20
	DefaultParkedRefresh = 2 * time.Second
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.StaleAfter = cmp.Or(c.StaleAfter, DefaultStaleAfter)
	c.PileUpAge = cmp.Or(c.PileUpAge, DefaultPileUpAge)
	c.ListLimit = cmp.Or(c.ListLimit, DefaultListLimit)
	c.ParkedRefresh = cmp.Or(c.ParkedRefresh, DefaultParkedRefresh)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	switch {
	case c.Pool == nil:
		return errors.New("ops: Config.Pool is required")
	case c.AMQPURL == "":
		return errors.New("ops: Config.AMQPURL is required")
	case c.Log == nil:
		return errors.New("ops: Config.Log is required")
	}
	return cmp.Or(
		settings.NonNegative("ops", settings.F("StaleAfter", c.StaleAfter), settings.F("PileUpAge", c.PileUpAge),
			settings.F("ParkedRefresh", c.ParkedRefresh)),
		settings.NonNegative("ops", settings.F("ListLimit", c.ListLimit)),
	)
}

// Console reads and steers one deployment. Create it with New.
type Console struct {
	cfg  Config
	topo broker.Topology
	mgmt *rabbitmgmt.Client
	log  *logrus.Entry
	// parkedSnap is the parking log as Run last read it.
	parkedSnap atomic.Pointer[parkedSnapshot]
}

// parkedSnapshot is one read of the parking log.
type parkedSnapshot struct {
	at      time.Time
	entries []Parked
}

// New returns a Console for cfg.
func New(cfg Config) (*Console, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	topo := cfg.Topology
	if cfg.Broker != nil {
		topo = cfg.Broker.Topology()
	}
	topo, err := topo.Resolve()
	if err != nil {
		return nil, fmt.Errorf("ops: %w", err)
	}
	mgmt, err := rabbitmgmt.New(rabbitmgmt.Config{AMQPURL: broker.SplitURLs(cfg.AMQPURL)[0], ManagementURL: cfg.ManagementURL})
	if err != nil {
		return nil, fmt.Errorf("ops: %w", err)
	}
	return &Console{cfg: cfg, topo: topo, mgmt: mgmt, log: cfg.Log.WithField(logging.FieldComponent, "ops")}, nil
}

// Topology returns the queue names the console reads.
func (c *Console) Topology() broker.Topology { return c.topo }

// Run keeps the parking log declared on every connection of Config.Broker,
// so that what is parked is there to read, and reads it every
// Config.ParkedRefresh, so that pages need not wait for the read, until ctx
// ends. Without a broker it returns at once.
func (c *Console) Run(ctx context.Context) {
	b := c.cfg.Broker
	if b == nil {
		return
	}
	tick := time.NewTicker(c.cfg.ParkedRefresh)
	defer tick.Stop()
	declared := false
	for {
		changed := b.Changed()
		if b.Connected() && !declared {
			err := c.declareLog(ctx)
			if err != nil && ctx.Err() == nil {
				c.log.WithError(err).Warn("ops: cannot declare the parking log; parked messages are not shown")
			}
			declared = err == nil
		}
		if declared {
			if _, err := c.readParked(ctx); err != nil && ctx.Err() == nil {
				c.log.WithError(err).Debug("ops: cannot read the parking log")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
			declared = false
		case <-tick.C:
		}
	}
}

// WaitBroker waits for Config.Broker's first connection, for a one-shot
// use of the console (a command line) that reads the parking log.
func (c *Console) WaitBroker(ctx context.Context) error {
	if c.cfg.Broker == nil {
		return fmt.Errorf("this process has no broker connection")
	}
	return c.cfg.Broker.WaitConnected(ctx)
}

func (c *Console) declareLog(ctx context.Context) error {
	ch, err := c.cfg.Broker.Channel(ctx)
	if err != nil {
		return err
	}
	defer ch.Close()
	return parkinglog.Declare(ch, c.topo)
}

// channel returns a channel for one read of the parking log.
func (c *Console) channel(ctx context.Context) (*amqp.Channel, error) {
	if c.cfg.Broker == nil {
		return nil, fmt.Errorf("this process has no broker connection")
	}
	if !c.cfg.Broker.Connected() {
		return nil, fmt.Errorf("the broker is %s", c.cfg.Broker.State())
	}
	return c.cfg.Broker.Channel(ctx)
}

// errText is err's message for a view, empty for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return strings.TrimSpace(err.Error())
}
