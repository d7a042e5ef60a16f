package broker

import (
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// SplitURLs returns the node addresses of a Config.URL: the URL itself, or
// each element of a comma-separated list of URLs, trimmed, empty elements
// dropped.
func SplitURLs(raw string) []string {
	var urls []string
	for _, u := range strings.Split(raw, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// addresses are the nodes a Broker may connect to. A client of a RabbitMQ
// cluster must not depend on one node: when the node it was connected to goes
// away, the next dial starts with the node after it and tries every other
// before it gives up.
//
// Only the Broker's connection loop uses it, so it needs no lock.
type addresses struct {
	urls []string
	// next is the index of the node the next dial tries first.
	next int
}

// newAddresses parses every URL of raw, so that a bad one stops New rather
// than an attempt to dial it.
func newAddresses(raw string) (*addresses, error) {
	urls := SplitURLs(raw)
	if len(urls) == 0 {
		return nil, errors.New("broker: no URL")
	}
	for _, u := range urls {
		if _, err := amqp.ParseURI(u); err != nil {
			return nil, fmt.Errorf("broker: parse URL %s: %w", redact(u), err)
		}
	}
	return &addresses{urls: urls}, nil
}

// dial tries every node once with connect, starting at next, and returns the
// first connection made. After a success the next dial starts one node
// further on: a reconnection, which follows a lost connection, goes to a
// node other than the one just lost when there is one.
func (a *addresses) dial(connect func(url string) (*amqp.Connection, error)) (*amqp.Connection, error) {
	var errs []error
	for i := range a.urls {
		n := (a.next + i) % len(a.urls)
		conn, err := connect(a.urls[n])
		if err == nil {
			a.next = (n + 1) % len(a.urls)
			return conn, nil
		}
		if len(a.urls) > 1 {
			err = fmt.Errorf("%s: %w", redact(a.urls[n]), err)
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// String lists the nodes with their passwords hidden, for logs.
func (a *addresses) String() string {
	redacted := make([]string, len(a.urls))
	for i, u := range a.urls {
		redacted[i] = redact(u)
	}
	return strings.Join(redacted, ",")
}
