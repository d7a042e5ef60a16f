package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/productd/productd/api"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
)

// /readyz names the dependencies that are down and nothing more: the
// driver's error, with the database's user and name in it, goes to the log,
// once per change of state. An optional dependency that is down degrades
// the process without making it unready; an expected one whose check has
// not been added yet is down.
func TestReadyzNamesTheDependencyOnly(t *testing.T) {
	t.Parallel()
	// A Postgres that does not answer: pgx names the user and the database
	// in its error.
	away, err := pgxpool.New(context.Background(), "postgres://secretuser@127.0.0.1:1/secretdb?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer away.Close()
	var postgres atomic.Pointer[pgxpool.Pool]
	postgres.Store(away)
	var brokerUp, redisUp atomic.Bool
	checks := &api.Checks{}
	checks.Add("postgres", func(ctx context.Context) error { return postgres.Load().Ping(ctx) })
	checks.Add("rabbitmq", func(context.Context) error {
		if brokerUp.Load() {
			return nil
		}
		return errors.New("dial amqp://guest:guest@10.1.2.3:5672: connection refused")
	})
	checks.Expect("storage")
	checks.AddOptional("redis", func(context.Context) error {
		if redisUp.Load() {
			return nil
		}
		return errors.New("dial tcp 10.1.2.4:6379: connection refused")
	})
	log, hook := test.NewNullLogger()
	srv := api.NewServer(api.Config{Log: log, Checks: checks})
	h := &harness{t: t, srv: srv}

	type body struct {
		Status      string   `json:"status"`
		Unavailable []string `json:"unavailable"`
		Degraded    []string `json:"degraded"`
	}
	probe := func(wantCode int, want body) {
		t.Helper()
		hook.Reset()
		rec := h.do(http.MethodGet, "/readyz", "")
		got := decode[body](t, rec)
		if rec.Code != wantCode || got.Status != want.Status || strings.Join(got.Unavailable, ",") != strings.Join(want.Unavailable, ",") ||
			strings.Join(got.Degraded, ",") != strings.Join(want.Degraded, ",") {
			t.Errorf("/readyz = %d %s, want %d %+v", rec.Code, rec.Body, wantCode, want)
		}
		for _, secret := range []string{"secretuser", "secretdb", "guest", "10.1.2", "refused"} {
			if strings.Contains(rec.Body.String(), secret) {
				t.Errorf("/readyz tells an anonymous caller %q: %s", secret, rec.Body)
			}
		}
	}
	logged := func(level logrus.Level, dependency, text string) bool {
		for _, e := range hook.AllEntries() {
			errText, _ := e.Data["error"].(string)
			if e.Level == level && e.Data["dependency"] == dependency && strings.Contains(e.Message+" "+errText, text) {
				return true
			}
		}
		return false
	}

	probe(http.StatusServiceUnavailable, body{"unavailable", []string{"postgres", "rabbitmq", "storage"}, []string{"redis"}})
	for dep, text := range map[string]string{"postgres": "secretuser", "rabbitmq": "10.1.2.3", "storage": "not been added", "redis": "10.1.2.4"} {
		if !logged(logrus.WarnLevel, dep, text) {
			t.Errorf("no warning with %q about %s in the log: %v", text, dep, hook.AllEntries())
		}
	}
	// The same states again: nothing new to log.
	probe(http.StatusServiceUnavailable, body{"unavailable", []string{"postgres", "rabbitmq", "storage"}, []string{"redis"}})
	if n := len(hook.AllEntries()); n != 1 {
		t.Errorf("a second probe of the same outage logged %d lines besides the access line: %v", n-1, hook.AllEntries())
	}

	// Everything required comes up; Redis stays away.
	postgres.Store(dbtest.NewPool(t))
	brokerUp.Store(true)
	checks.Add("storage", func(context.Context) error { return nil })
	probe(http.StatusOK, body{"ready", nil, []string{"redis"}})
	redisUp.Store(true)
	probe(http.StatusOK, body{"ready", nil, nil})
	if !logged(logrus.InfoLevel, "redis", "back") {
		t.Errorf("Redis coming back was not logged: %v", hook.AllEntries())
	}
}

// A server without Products, as a relay or worker process runs it, answers
// /healthz and /readyz and nothing of the product API.
func TestServerWithoutProducts(t *testing.T) {
	t.Parallel()
	h := &harness{t: t, srv: api.NewServer(api.Config{Log: logging.Discard()})}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/products": 404, "/products/1": 404, "/openapi.yaml": 404} {
		if rec := h.do(http.MethodGet, path, ""); rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
	}
}
