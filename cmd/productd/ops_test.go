package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/ops"
)

// opsRun runs `productd ops args...` and returns its exit code, stdout and
// stderr.
func (d *deployment) opsRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := d.run(context.Background(), append([]string{"ops"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// dbExec runs a statement on the deployment's database.
func (d *deployment) dbExec(t testing.TB, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), d.getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// `productd ops` reads and steers a deployment from the command line, and
// the api role serves the same console over HTTP.
func TestOpsCommandAndConsoleRoutes(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	logs := d.start(t, "api")
	d.awaitReady(t, logs)
	p := d.create(t, jsonRequest(t, http.MethodPost, d.url("/products"), map[string]any{
		"user_id": 3, "product_name": "kettle", "product_price": 20, "product_images": []string{"https://example.com/k.jpg"},
	}))
	d.dbExec(t, `UPDATE outbox SET status = 'dead', attempts = 10, last_error = 'nacked: test' WHERE product_id = $1`, p.ID)

	code, out, errOut := d.opsRun(t, "--json", "dead", "list", "--product", fmt.Sprint(p.ID))
	var page ops.DeadPage
	if code != 0 || json.Unmarshal([]byte(out), &page) != nil || len(page.Rows) != 1 || page.Rows[0].LastError != "nacked: test" {
		t.Fatalf("dead list: exit %d, %q, %s", code, out, errOut)
	}
	row := page.Rows[0].ID
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"status"}, "outbox   warn"},
		{[]string{"dead", "list"}, "nacked: test"},
		{[]string{"product", fmt.Sprint(p.ID)}, fmt.Sprintf("Requeue outbox row %d", row)},
		{[]string{"relay", "pause", "disk", "swap"}, "relay paused"},
		{[]string{"--json", "status"}, `"changed_by": "`},
		{[]string{"relay", "resume"}, "relay resumed"},
		{[]string{"dead", "requeue", fmt.Sprint(row)}, fmt.Sprintf("requeued outbox row %d", row)},
		{[]string{"dead", "requeue", "--all"}, "requeued 0 dead rows"},
		{[]string{"--json", "dead", "requeue", "--error", "nacked"}, `{"done":"requeued 0 dead rows"}`},
	} {
		code, out, errOut := d.opsRun(t, step.args...)
		if code != 0 || !strings.Contains(out, step.want) {
			t.Errorf("ops %v: exit %d, stdout %q, stderr %s; want %q", step.args, code, out, errOut, step.want)
		}
	}
	if code, _, errOut := d.opsRun(t, "dead", "discard", fmt.Sprint(row)); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("discarding a row that is not dead: exit %d, %s", code, errOut)
	}
	if code, out, errOut := d.opsRun(t, "parking", "replay", "--limit", "5"); code != 0 || !strings.Contains(out, "replayed 0 parked messages") {
		t.Errorf("replay of an empty parking lot: exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	if code, out, errOut := d.opsRun(t, "product", "rerun", fmt.Sprint(p.ID), "new", "CDN"); code != 0 || !strings.Contains(out, "re-running the images") {
		t.Errorf("product rerun: exit %d, %q, %s", code, out, errOut)
	}
	for _, bad := range [][]string{{"product", "rerun", "x"}, {"dead", "requeue"}, {"dead", "requeue", "x"}, {"product", "x"}, {"relay", "pause"}, {"sideways"},
		{"dead", "list", "--nope"}, {"parking", "replay", "extra"}, {"dead", "discard", "x"}} {
		if code, _, errOut := d.opsRun(t, bad...); code != 2 || !strings.Contains(errOut, "usage: productd ops") {
			t.Errorf("ops %v: exit %d, %s; want the usage", bad, code, errOut)
		}
	}
	if code, out, _ := d.opsRun(t, "help"); code != 0 || !strings.Contains(out, "dead requeue") {
		t.Errorf("ops help: exit %d, %q", code, out)
	}

	// The api role serves the console to this loopback client, and the
	// record says who did what from where.
	resp := d.do(t, mustRequest(t, http.MethodGet, d.url("/ops/api/actions"), nil))
	expectStatus(t, resp, http.StatusOK)
	var actions []ops.Action
	if err := json.NewDecoder(resp.Body).Decode(&actions); err != nil {
		t.Fatal(err)
	}
	if len(actions) < 5 || !strings.Contains(actions[len(actions)-1].Actor, "(productd ops)") || actions[len(actions)-1].Action != "pause relay" {
		t.Errorf("recorded actions: %+v", actions)
	}
	for _, path := range []string{"/ops", "/riverui/", "/ops/api/pipeline"} {
		resp := d.do(t, mustRequest(t, http.MethodGet, d.url(path), nil))
		expectStatus(t, resp, http.StatusOK)
	}
}

// flowOf reads the console's flow, by stage name.
func flowOf(t testing.TB, d *deployment) map[string]ops.Stage {
	t.Helper()
	resp, err := d.client.Get(d.url("/ops/api/flow"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var f ops.Flow
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		t.Fatal(err)
	}
	out := map[string]ops.Stage{}
	for _, s := range f.Stages {
		out[s.Name] = s
	}
	return out
}

// With the broker away (a proxy in front of it cut, the shared RabbitMQ left
// alone), the console shows the relay and the broker down and the rows
// piling up in the outbox; once the broker is back, it shows them drained.
func TestTheConsoleShowsABrokerOutageAndTheDrain(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	proxy := amqptest.NewProxyFor(t, d.getenv("AMQP_URL"))
	d.setenv("AMQP_URL", proxy.URL())
	logs := d.start(t, "all")
	d.awaitReady(t, logs)
	images := serveImage(t, readFixture(t, "photo-444.jpg"))
	post := func(n int) {
		for i := range n {
			d.create(t, jsonRequest(t, http.MethodPost, d.url("/products"), map[string]any{
				"user_id": 9, "product_name": fmt.Sprint("mug ", i), "product_price": 4, "product_images": []string{images + "/photo.jpg"},
			}))
		}
	}
	await(t, logs, "the relay to report running", func() (bool, string) {
		f := flowOf(t, d)
		return f["relay"].Health == ops.HealthOK, fmt.Sprintf("%+v", f["relay"])
	})

	proxy.Cut()
	await(t, logs, "the console to show the broker down", func() (bool, string) {
		f := flowOf(t, d)
		return f["relay"].Health == ops.HealthDown && f["broker"].Health == ops.HealthDown,
			fmt.Sprintf("relay %+v, broker %+v", f["relay"], f["broker"])
	})
	for _, n := range []int64{3, 6} {
		post(3)
		f := flowOf(t, d)
		if out := f["outbox"]; out.Backlog == nil || out.Backlog.N != n || !strings.Contains(f["relay"].Note, "waits for the broker") {
			t.Errorf("with the broker away, after %d products: outbox %+v, relay %+v", n, out, f["relay"])
		}
	}

	proxy.Restore()
	await(t, logs, "the outbox to drain and the products to be done", func() (bool, string) {
		f := flowOf(t, d)
		out, done := f["outbox"], f["done"]
		return out.Backlog != nil && out.Backlog.N == 0 && f["relay"].Health == ops.HealthOK && done.Backlog != nil && done.Backlog.N == 0,
			fmt.Sprintf("outbox %+v, relay %+v, done %+v", out, f["relay"], done)
	})
}

// storyOf reads a product's story from the console.
func storyOf(t testing.TB, d *deployment, id int64) ops.Story {
	t.Helper()
	resp, err := d.client.Get(d.url(fmt.Sprint("/ops/api/products/", id)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s ops.Story
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// A failed product's images re-run from the console, and the parking lot
// replayed from it, go through the pipeline again: each shows as a new event
// in the product's story, and the replay empties the parking lot.
func TestRerunAndReplayFromTheConsole(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	logs := d.start(t, "all")
	d.awaitReady(t, logs)
	// Not an image: a permanent failure, parked at once.
	notAnImage := serveImage(t, []byte("these bytes are no picture"))
	p := d.create(t, jsonRequest(t, http.MethodPost, d.url("/products"), map[string]any{
		"user_id": 2, "product_name": "vase", "product_price": 8, "product_images": []string{notAnImage + "/vase.jpg"},
	}))
	failedWith := func(events int) func() (bool, string) {
		return func() (bool, string) {
			s := storyOf(t, d, p.ID)
			return s.ImageStatus == "failed" && len(s.Events) == events && len(s.Parked) == events,
				fmt.Sprintf("%s, %d events, %d parked: %s", s.ImageStatus, len(s.Events), len(s.Parked), s.Why)
		}
	}
	await(t, logs, "the product to fail and be parked", failedWith(1))

	post := func(path string) map[string]any {
		t.Helper()
		resp := d.do(t, jsonRequest(t, http.MethodPost, d.url(path), map[string]any{"reason": "the CDN is back"}))
		expectStatus(t, resp, http.StatusOK)
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	post(fmt.Sprint("/ops/api/products/", p.ID, "/rerun"))
	await(t, logs, "the re-run to fail and be parked again", failedWith(2))
	if s := storyOf(t, d, p.ID); s.Events[0].ProductVersion <= s.Events[1].ProductVersion {
		t.Errorf("the re-run's event announces version %d after %d", s.Events[0].ProductVersion, s.Events[1].ProductVersion)
	}

	if out := post("/ops/api/parking/replay"); out["count"] != 1.0 {
		t.Errorf("replay = %v, want the newest image event moved (the older one is stale)", out)
	}
	await(t, logs, "the replayed event to run and the parking lot to hold only its failure", func() (bool, string) {
		s := storyOf(t, d, p.ID)
		var parking ops.Queue
		for _, q := range pipelineOf(t, d).Queues {
			if q.Role == "parking" {
				parking = q
			}
		}
		return s.ImageStatus == "failed" && len(s.Events) == 3 && parking.Messages == 1,
			fmt.Sprintf("%s, %d events, parking %+v", s.ImageStatus, len(s.Events), parking)
	})
	actions := actionsOf(t, d)
	if len(actions) != 2 || actions[0].Action != "replay parking lot" || actions[0].Result != "replayed 1" || actions[1].Action != "re-run images" {
		t.Errorf("recorded actions: %+v", actions)
	}
}

func pipelineOf(t testing.TB, d *deployment) ops.Pipeline {
	t.Helper()
	resp, err := d.client.Get(d.url("/ops/api/pipeline"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p ops.Pipeline
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func actionsOf(t testing.TB, d *deployment) []ops.Action {
	t.Helper()
	resp, err := d.client.Get(d.url("/ops/api/actions"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a []ops.Action
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

// River UI's routine (requests, polls) stays below the process's info
// level; what it warns about reaches the log.
func TestRiverUILevel(t *testing.T) {
	t.Parallel()
	for level, want := range map[slog.Level]logrus.Level{
		slog.LevelDebug: logrus.DebugLevel, slog.LevelInfo: logrus.DebugLevel,
		slog.LevelWarn: logrus.WarnLevel, slog.LevelError: logrus.WarnLevel,
	} {
		if got := riverUILevel(level); got != want {
			t.Errorf("riverUILevel(%v) = %v, want %v", level, got, want)
		}
	}
}
