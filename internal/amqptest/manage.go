package amqptest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// management is the management API of the test RabbitMQ: the plugin listens
// beside the broker, on its default port, and takes the broker's
// credentials.
type management struct {
	base       string
	user, pass string
	vhost      string
}

func managementOf(t testing.TB) management {
	t.Helper()
	uri, err := amqp.ParseURI(URL(t))
	if err != nil {
		t.Fatalf("parse AMQP URL: %v", err)
	}
	return management{
		base: "http://" + net.JoinHostPort(uri.Host, "15672"),
		user: uri.Username, pass: uri.Password, vhost: uri.Vhost,
	}
}

// do sends one request; out, when not nil, receives the JSON answer.
func (m management) do(method, path, body string, out any) error {
	req, err := http.NewRequest(method, m.base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(m.user, m.pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: Timeout}).Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w\n(is RabbitMQ with its management plugin running? run `scripts/services up`)", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && method == http.MethodDelete {
		return nil // gone already
	}
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, msg)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// names lists the names of the queues or exchanges (kind) of the vhost.
func (m management) names(kind string) ([]string, error) {
	var items []struct {
		Name string `json:"name"`
	}
	if err := m.do(http.MethodGet, "/api/"+kind+"/"+url.PathEscape(m.vhost)+"?columns=name", "", &items); err != nil {
		return nil, err
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Name
	}
	return out, nil
}

// deleteMatching deletes the vhost's queues, then exchanges, whose name
// match accepts.
func (m management) deleteMatching(match func(name string) bool) error {
	var errs []error
	for _, kind := range []string{"queues", "exchanges"} {
		names, err := m.names(kind)
		if err != nil {
			return err
		}
		for _, name := range names {
			if match(name) {
				errs = append(errs, m.do(http.MethodDelete, "/api/"+kind+"/"+url.PathEscape(m.vhost)+"/"+url.PathEscape(name), "", nil))
			}
		}
	}
	return errors.Join(errs...)
}

// DeletePrefixed deletes every queue and exchange of the test RabbitMQ whose
// name starts with prefix, whoever declared it: the topology's, and those
// that code under test derives from it (a stream beside the parking lot,
// say). An empty prefix deletes nothing.
func DeletePrefixed(t testing.TB, prefix string) {
	t.Helper()
	if prefix == "" {
		return
	}
	if err := managementOf(t).deleteMatching(func(name string) bool { return strings.HasPrefix(name, prefix) }); err != nil {
		t.Errorf("delete the queues and exchanges under %s: %v", prefix, err)
	}
}

// NewVhost creates a RabbitMQ vhost for t through the management API,
// deletes it (and everything in it) when t ends, and returns the AMQP URL of
// the test broker in that vhost.
func NewVhost(t testing.TB) string {
	t.Helper()
	reapOnce(t)
	m := managementOf(t)
	name := fmt.Sprintf("productd-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	if err := m.do(http.MethodPut, "/api/vhosts/"+name, "", nil); err != nil {
		t.Fatalf("create vhost: %v", err)
	}
	t.Cleanup(func() {
		if err := m.do(http.MethodDelete, "/api/vhosts/"+name, "", nil); err != nil {
			t.Errorf("delete vhost %s: %v", name, err)
		}
	})
	if err := m.do(http.MethodPut, "/api/permissions/"+name+"/"+url.PathEscape(m.user), `{"configure":".*","write":".*","read":".*"}`, nil); err != nil {
		t.Fatalf("grant access to vhost %s: %v", name, err)
	}
	u, err := url.Parse(URL(t))
	if err != nil {
		t.Fatalf("parse AMQP URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// The names this package gives carry the pid of the test process: Prefix's
// queues and exchanges, and NewVhost's vhosts.
var (
	prefixedName = regexp.MustCompile(`^test\.[a-z0-9-]*\.([0-9]+)\.[0-9]+\.`)
	vhostName    = regexp.MustCompile(`^productd-test-([0-9]+)-[0-9]+$`)
)

var reaped sync.Once

// reapOnce removes, once per test process, what test processes that died
// without their clean-ups (killed, or timed out) left in the test RabbitMQ:
// the queues, exchanges and vhosts named after a process that no longer
// runs on this machine. A name whose process runs stays, whatever that
// process is.
func reapOnce(t testing.TB) {
	t.Helper()
	reaped.Do(func() {
		m := managementOf(t)
		err := m.deleteMatching(func(name string) bool { return ofDeadProcess(prefixedName, name) })
		var vhosts []struct {
			Name string `json:"name"`
		}
		if err == nil {
			err = m.do(http.MethodGet, "/api/vhosts?columns=name", "", &vhosts)
		}
		for _, v := range vhosts {
			if ofDeadProcess(vhostName, v.Name) {
				err = errors.Join(err, m.do(http.MethodDelete, "/api/vhosts/"+url.PathEscape(v.Name), "", nil))
			}
		}
		if err != nil {
			t.Logf("remove what dead test processes left in RabbitMQ (a later run tries again): %v", err)
		}
	})
}

// ofDeadProcess reports whether name, matched by re, carries the pid of a
// process that no longer runs.
func ofDeadProcess(re *regexp.Regexp, name string) bool {
	m := re.FindStringSubmatch(name)
	if m == nil {
		return false
	}
	pid, err := strconv.Atoi(m[1])
	if err != nil || pid <= 0 {
		return false
	}
	// Signal 0 checks that the process exists without touching it.
	err = syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}
