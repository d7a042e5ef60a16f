// Package rabbitmgmt reads queue depths, message rates and node alarms from
// RabbitMQ's management API, which answers without touching any message.
package rabbitmgmt

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd/internal/settings"
)

// DefaultPort is the management plugin's port.
const DefaultPort = "15672"

// DefaultTimeout bounds one request when Config.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// Config is where the management API is and who to be there.
type Config struct {
	// AMQPURL is the broker's AMQP URL: its host, credentials and vhost are
	// used unless ManagementURL says otherwise. Required.
	AMQPURL string
	// ManagementURL is the management API's base URL, e.g.
	// http://guest:guest@127.0.0.1:15672. Empty means http on
	// DefaultPort of AMQPURL's host, with AMQPURL's credentials. Its
	// credentials, when it has any, win over AMQPURL's.
	ManagementURL string
	// Timeout bounds one request. Zero means DefaultTimeout (2 s).
	Timeout time.Duration
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	return settings.NonNegative("management API", settings.F("Timeout", c.Timeout))
}

// Client asks one broker's management API.
type Client struct {
	base   *url.URL
	user   string
	pass   string
	vhost  string
	client *http.Client
}

// New returns a Client for cfg. It fails only on URLs it cannot parse and
// a negative Timeout.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	uri, err := amqp.ParseURI(cfg.AMQPURL)
	if err != nil {
		return nil, fmt.Errorf("management API: parse AMQP URL: %w", err)
	}
	c := &Client{user: uri.Username, pass: uri.Password, vhost: uri.Vhost, client: &http.Client{Timeout: cfg.Timeout}}
	if cfg.ManagementURL == "" {
		c.base = &url.URL{Scheme: "http", Host: net.JoinHostPort(uri.Host, DefaultPort)}
	} else {
		if c.base, err = url.Parse(cfg.ManagementURL); err != nil || c.base.Host == "" {
			return nil, errors.New("management API: its URL is not an http(s) URL")
		}
		if u := c.base.User; u != nil {
			c.user = u.Username()
			c.pass, _ = u.Password()
		}
		c.base.User = nil
	}
	if c.vhost == "" {
		c.vhost = "/"
	}
	return c, nil
}

// Vhost returns the vhost the client reads.
func (c *Client) Vhost() string { return c.vhost }

// Queue is one queue as the management API sees it. Counts are exact as of
// the broker's last statistics emission (every 5 s by default); rates are
// the broker's own estimates over its sampling window.
type Queue struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	State     string `json:"state"`
	Messages  int64  `json:"messages"`
	Ready     int64  `json:"messages_ready"`
	Unacked   int64  `json:"messages_unacknowledged"`
	Consumers int64  `json:"consumers"`
	Stats     struct {
		Publish   Rate `json:"publish_details"`
		Deliver   Rate `json:"deliver_get_details"`
		Ack       Rate `json:"ack_details"`
		Redeliver Rate `json:"redeliver_details"`
	} `json:"message_stats"`
}

// Rate is a message rate per second.
type Rate struct {
	Rate float64 `json:"rate"`
}

// Queue returns the queue called name in the client's vhost.
func (c *Client) Queue(ctx context.Context, name string) (Queue, error) {
	var q Queue
	err := c.get(ctx, "/api/queues/"+url.PathEscape(c.vhost)+"/"+url.PathEscape(name), &q)
	return q, err
}

// Node is one broker node's health.
type Node struct {
	Name          string `json:"name"`
	Running       bool   `json:"running"`
	MemAlarm      bool   `json:"mem_alarm"`
	DiskFreeAlarm bool   `json:"disk_free_alarm"`
}

// Overview is the broker's version and its nodes.
type Overview struct {
	Version string `json:"rabbitmq_version"`
	Nodes   []Node `json:"-"`
}

// Overview returns the broker's version and the health of its nodes.
func (c *Client) Overview(ctx context.Context) (Overview, error) {
	var o Overview
	if err := c.get(ctx, "/api/overview", &o); err != nil {
		return o, err
	}
	err := c.get(ctx, "/api/nodes", &o.Nodes)
	return o, err
}

func (c *Client) get(ctx context.Context, path string, into any) error {
	u := *c.base
	u.RawPath = strings.TrimRight(c.base.EscapedPath(), "/") + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("management API %s: %w", path, err)
	}
	req.SetBasicAuth(c.user, c.pass)
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("management API %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("management API %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("management API %s: decode: %w", path, err)
	}
	return nil
}
