package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/proxytest"
	"github.com/productd/productd/internal/redistest"
	"github.com/productd/productd/internal/s3test"
)

// Every process serves /readyz, and it checks what the process's role
// needs, no more: Postgres always, RabbitMQ for relay and worker, the
// storage for api (uploads) and worker; Redis away only degrades. The
// answer names the dependency; the driver's error goes to the log.
func TestReadinessFollowsEachRolesDependencies(t *testing.T) {
	d := newDeployment(t)
	proxies := map[string]*proxytest.Proxy{}
	for dep, variable := range map[string]string{"postgres": "DATABASE_URL", "rabbitmq": "AMQP_URL"} {
		p := amqptest.NewProxyFor(t, os.Getenv(variable))
		t.Setenv(variable, p.URL())
		proxies[dep] = p.Proxy
	}
	redis := redistest.NewProxy(t)
	t.Setenv("REDIS_URL", redis.URL())
	proxies["redis"] = redis.Proxy
	proxies["storage"] = s3test.NewProxy(t)
	t.Setenv("S3_ENDPOINT", proxies["storage"].Addr())

	logs, addrs := d.startApart(t)
	ready := func(role, want string) {
		t.Helper()
		status := http.StatusOK
		if strings.Contains(want, `"unavailable"`) {
			status = http.StatusServiceUnavailable
		}
		if body := awaitStatus(t, logs[role], "http://"+addrs[role]+"/readyz", status); body != want {
			t.Errorf("%s: /readyz = %s, want %s", role, body, want)
		}
	}
	const up = `{"status":"ready"}`
	for role := range addrs {
		ready(role, up)
	}

	for _, outage := range []struct {
		dependency string
		down       []string // the roles it makes unready
	}{
		{"rabbitmq", []string{"relay", "worker"}},
		{"storage", []string{"api", "worker"}},
		{"postgres", []string{"api", "relay", "worker"}},
		{"redis", nil},
	} {
		proxies[outage.dependency].Cut()
		for role := range addrs {
			switch {
			case outage.dependency == "redis":
				ready(role, `{"status":"ready","degraded":["redis"]}`)
			case strings.Contains(strings.Join(outage.down, " "), role):
				ready(role, fmt.Sprintf(`{"status":"unavailable","unavailable":[%q]}`, outage.dependency))
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
