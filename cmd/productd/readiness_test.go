package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/proxytest"
	"github.com/productd/productd/internal/redistest"
	"github.com/productd/productd/internal/s3test"
)

// Every process serves /readyz, and it checks what the process's role
// needs, no more: Postgres always, RabbitMQ for relay and worker, the
// storage for api (uploads) and worker; Redis away only degrades, and so do
// RabbitMQ and the storage in a process that serves the API. The answer
// names the dependency; the driver's error goes to the log.
func TestReadinessFollowsEachRolesDependencies(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	proxies := map[string]*proxytest.Proxy{}
	for dep, variable := range map[string]string{"postgres": "DATABASE_URL", "rabbitmq": "AMQP_URL"} {
		p := amqptest.NewProxyFor(t, d.getenv(variable))
		d.setenv(variable, p.URL())
		proxies[dep] = p.Proxy
	}
	redis := redistest.NewProxy(t)
	d.setenv("REDIS_URL", redis.URL())
	proxies["redis"] = redis.Proxy
	proxies["storage"] = s3test.NewProxy(t)
	d.setenv("S3_ENDPOINT", proxies["storage"].Addr())

	logs, addrs := d.startApart(t)
	// A dependency that comes back is seen once its client reconnects:
	// each answer is awaited, not expected at once.
	ready := func(role, want string) {
		t.Helper()
		awaitReadyz(t, logs[role], "http://"+addrs[role]+"/readyz", want)
	}
	const up = `{"status":"ready"}`
	for role := range addrs {
		ready(role, up)
	}

	for _, outage := range []struct {
		dependency string
		down       []string // the roles it makes unready
		degraded   []string // the roles it degrades
	}{
		{"rabbitmq", []string{"relay", "worker"}, nil},
		{"storage", []string{"worker"}, []string{"api"}},
		{"postgres", []string{"api", "relay", "worker"}, nil},
		{"redis", nil, []string{"api", "relay", "worker"}},
	} {
		proxies[outage.dependency].Cut()
		for role := range addrs {
			switch {
			case slices.Contains(outage.down, role):
				ready(role, fmt.Sprintf(`{"status":"unavailable","unavailable":[%q]}`, outage.dependency))
			case slices.Contains(outage.degraded, role):
				ready(role, fmt.Sprintf(`{"status":"ready","degraded":[%q]}`, outage.dependency))
			default:
				ready(role, up)
			}
		}
		proxies[outage.dependency].Restore()
		for role := range addrs {
			ready(role, up)
		}
	}
	for role, dependencies := range map[string][]string{"api": {"postgres", "storage", "redis"}, "relay": {"postgres", "rabbitmq", "redis"}, "worker": {"postgres", "rabbitmq", "storage", "redis"}} {
		for _, dep := range dependencies {
			if !logs[role].contains(`"dependency":"` + dep + `","error":`) {
				t.Errorf("%s did not log why %s was down:\n%s", role, dep, logs[role])
			}
		}
	}
	d.stop(t, logs["api"], `"msg":"productd stopped"`)
}

// A process that serves the API stays in its load balancer while RabbitMQ
// or the storage is away, because it still takes creates (into the outbox)
// and reads: productd all reports them as degraded, not unavailable.
func TestReadinessOfAllIsDegradedWithoutBrokerOrStorage(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	broker := amqptest.NewProxyFor(t, d.getenv("AMQP_URL"))
	d.setenv("AMQP_URL", broker.URL())
	storage := s3test.NewProxy(t)
	d.setenv("S3_ENDPOINT", storage.Addr())
	logs := d.start(t, "all")
	readyz := "http://" + d.addr + "/readyz"
	// Until its broker connects, the process reports it degraded.
	awaitReadyz(t, logs, readyz, `{"status":"ready"}`)

	broker.Cut()
	storage.Cut()
	awaitReadyz(t, logs, readyz, `{"status":"ready","degraded":["rabbitmq","storage"]}`)
	// What keeps it in the load balancer: creates still answer 201.
	images := serveImage(t, readFixture(t, "photo.jpg"))
	p := d.create(t, jsonRequest(t, http.MethodPost, d.url("/products"), map[string]any{
		"user_id": 7, "product_name": "lamp", "product_price": 19.5,
		"product_images": []string{images + "/photo.jpg"},
	}))
	broker.Restore()
	storage.Restore()
	awaitReadyz(t, logs, readyz, `{"status":"ready"}`)
	// and its event, kept in the outbox meanwhile, is published once the broker is back.
	d.checkCompressed(t, d.awaitImages(t, logs, p.ID))
	d.stop(t, logs, `"msg":"productd stopped"`)
}

// awaitReadyz waits for url to answer want, with 503 when want names an
// unavailable dependency and 200 otherwise.
func awaitReadyz(t *testing.T, logs *syncBuffer, url, want string) {
	t.Helper()
	client := &http.Client{Timeout: awaitTimeout}
	await(t, logs, "GET "+url+" to answer "+want, func() (bool, string) {
		resp, err := client.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		status := http.StatusOK
		if strings.Contains(want, `"unavailable"`) {
			status = http.StatusServiceUnavailable
		}
		return resp.StatusCode == status && string(body) == want, fmt.Sprintf("%d %s", resp.StatusCode, body)
	})
}
