package amqptest

import (
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/productd/productd/internal/failtest"
)

// Without RabbitMQ, a test fails with the command that starts it.
func TestRabbitMQAwaySaysHowToStartIt(t *testing.T) {
	t.Setenv("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/")
	// Whether RabbitMQ answers is asked again at the address above, and
	// forgotten afterwards.
	saved := reachable
	reachable = sync.OnceValue(dial)
	t.Cleanup(func() { reachable = saved })
	if msg := failtest.Failures(t, func(tb testing.TB) { URL(tb) }); !strings.Contains(msg, "run `scripts/services up`") {
		t.Errorf("URL with RabbitMQ away failed with %q, want the command that starts it", msg)
	}
}

// What the broker refuses fails the test with what was being done.
func TestBrokerRefusalsFailTheTest(t *testing.T) {
	t.Parallel()
	missing := Prefix(t) + "missing"
	for _, tc := range []struct {
		doing, want string
		fn          func(testing.TB)
	}{
		{"delete a reserved exchange", "delete exchange amq.direct", func(tb testing.TB) { DeleteExchanges(tb, "amq.direct") }},
		{"collect from a queue that is not there", "consume " + missing, func(tb testing.TB) { Collect(tb, missing, 1) }},
		{"bind to an exchange that is not there", "NOT_FOUND", func(tb testing.TB) { BindRefusingQueue(tb, missing, "key") }},
		{"proxy an unparsable URL", "parse URL to proxy", func(tb testing.TB) { NewProxyFor(tb, "amqp://%zz") }},
	} {
		if msg := failtest.Failures(t, tc.fn); !strings.Contains(msg, tc.want) {
			t.Errorf("%s: failed with %q, want %q", tc.doing, msg, tc.want)
		}
	}
	if got := failtest.Failures(t, func(tb testing.TB) {
		if ds := Collect(tb, missing, 0); ds != nil {
			tb.Errorf("collected %d messages", len(ds))
		}
	}); got != "" {
		t.Errorf("collecting none from any queue: %s", got)
	}
}

// The management API's refusals and answers that are not JSON are errors
// naming the request; deleting what is gone already is not.
func TestManagementErrors(t *testing.T) {
	t.Parallel()
	m := managementOf(t)
	if err := m.do(http.MethodGet, "/api/no-such-thing", "", nil); err == nil || !strings.Contains(err.Error(), "GET /api/no-such-thing: 404") {
		t.Errorf("GET of an unknown path: %v, want its 404", err)
	}
	var out []string
	if err := m.do(http.MethodGet, "/", "", &out); err == nil || !strings.Contains(err.Error(), "decode the answer") {
		t.Errorf("GET of the HTML start page: %v, want an error decoding it", err)
	}
	if err := m.do(http.MethodDelete, "/api/vhosts/productd-test-gone-already", "", nil); err != nil {
		t.Errorf("DELETE of a vhost that is not there: %v", err)
	}
	m.base = "http://127.0.0.1:1"
	if err := m.do(http.MethodGet, "/api/vhosts", "", nil); err == nil || !strings.Contains(err.Error(), "run `scripts/services up`") {
		t.Errorf("management API away: %v, want the command that starts it", err)
	}
}

// The queues and vhosts of a test process that died go on the next reap;
// those of a process that runs stay. Not parallel: it runs the reap again.
func TestReapRemovesWhatDeadProcessesLeft(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	deadQueue := fmt.Sprintf("test.reap.%d.1.queue", cmd.Process.Pid)
	deadVhost := fmt.Sprintf("productd-test-%d-1", cmd.Process.Pid)
	aliveQueue := Prefix(t) + "queue"
	ch := Channel(t)
	for _, q := range []string{deadQueue, aliveQueue} {
		if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { DeleteQueues(t, deadQueue, aliveQueue) })
	m := managementOf(t)
	if err := m.do(http.MethodPut, "/api/vhosts/"+deadVhost, "", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.do(http.MethodDelete, "/api/vhosts/"+deadVhost, "", nil) })

	reaped = sync.Once{}
	reapOnce(t)

	queues, err := m.names("queues")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(queues, deadQueue) || !slices.Contains(queues, aliveQueue) {
		t.Errorf("after the reap: %s there %v (want false), %s there %v (want true)",
			deadQueue, slices.Contains(queues, deadQueue), aliveQueue, slices.Contains(queues, aliveQueue))
	}
	var vhosts []struct {
		Name string `json:"name"`
	}
	if err := m.do(http.MethodGet, "/api/vhosts?columns=name", "", &vhosts); err != nil {
		t.Fatal(err)
	}
	for _, v := range vhosts {
		if v.Name == deadVhost {
			t.Errorf("vhost %s of a dead process outlived the reap", deadVhost)
		}
	}
}
