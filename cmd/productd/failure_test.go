package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// What an operator meets when productd cannot do its job: a role that
// fails takes the process down cleanly, a storage that is away at start
// costs uploads (and readiness), and settings that cannot work stop it with a reason
// that keeps passwords out of the log.

func TestRoleThatFailsStopsTheOthers(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	taken, err := net.Listen("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	// Cancelled at the end, for the bucket set-up that may still run.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	if code := d.run(ctx, []string{"all"}, io.Discard, logs); code != 1 {
		t.Fatalf("exit %d with HTTP_ADDR taken, want 1:\n%s", code, logs)
	}
	for _, want := range []string{
		`"error":"http: listen on ` + d.addr,
		`"msg":"productd stopped with an error"`,
		// The roles that were fine are stopped, not left running.
		`"msg":"relay: stopped"`,
		`"msg":"imageworker: stopped"`,
	} {
		if !logs.contains(want) {
			t.Errorf("no %s in the log:\n%s", want, logs)
		}
	}
}

// A storage that is away at start does not stop the API: it serves, tells
// the load balancer it is degraded (uploads need the storage, nothing else
// does), and only uploads fail.
func TestStorageAwayAtStartOnlyCostsUploads(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	d.setenv("S3_ENDPOINT", freeAddr(t)) // nothing listens there
	logs := d.start(t, "api")
	if body := awaitStatus(t, logs, d.url("/readyz"), http.StatusOK); body != `{"status":"ready","degraded":["storage"]}` {
		t.Errorf("/readyz with the storage away: %s", body)
	}
	await(t, logs, "the bucket set-up to be retried", func() (bool, string) {
		return logs.contains(`"msg":"storage: bucket not ready; uploads fail until it is"`), "no retry logged"
	})

	resp := d.do(t, multipartRequest(t, d.url("/products"), map[string]string{
		"user_id": "1", "product_name": "stool", "product_price": "5",
	}, readFixture(t, "photo.jpg")))
	expectStatus(t, resp, http.StatusServiceUnavailable)
	// Products with image URLs need no storage to be accepted.
	d.create(t, jsonRequest(t, http.MethodPost, d.url("/products"), map[string]any{
		"user_id": 1, "product_name": "stool", "product_price": 5,
		"product_images": []string{"https://images.example.com/stool.jpg"},
	}))

	d.stop(t, logs, `"msg":"productd stopped"`)
}

func TestSettingsThatCannotWorkStopTheStart(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	const secret = "s3cr3t-pw"
	// Values a library would refuse stop the start before anything runs,
	// with one line that names the variable (exit 2); the others stop it
	// when the role meets them (exit 1).
	for _, tc := range []struct {
		role, name, value, want string
		code                    int
	}{
		{"relay", "AMQP_URL", "amqp://guest:" + secret + "@127.0.0.1:5672/?heartbeat=often", `config: AMQP_URL=`, 2},
		{"worker", "AMQP_URL", "amqp://guest:" + secret + "@127.0.0.1:5672/?heartbeat=often", `config: AMQP_URL=`, 2},
		{"api", "REDIS_URL", "redis://:" + secret + "@127.0.0.1:6379/first", `config: REDIS_URL=`, 2},
		{"migrate", "DATABASE_URL", "postgres://postgres:" + secret + "@127.0.0.1/x?sslmode=sometimes", `config: DATABASE_URL=`, 2},
		{"api", "DATABASE_URL", "postgres://postgres:" + secret + "@127.0.0.1/x?sslmode=sometimes", `config: DATABASE_URL=`, 2},
		{"api", "S3_ENDPOINT", "not_a_host!:9000", "create S3 client for not_a_host!:9000", 1},
	} {
		t.Run(tc.name+"/"+tc.role, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out bytes.Buffer
			logs := &syncBuffer{}
			if code := d.runWith(ctx, []string{tc.role}, map[string]string{tc.name: tc.value}, &out, logs); code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, logs)
			}
			if !logs.contains(tc.want) {
				t.Errorf("no error naming %q in the output:\n%s", tc.want, logs)
			}
			if tc.code == 2 && strings.Count(logs.String(), "\n") != 1 {
				t.Errorf("a bad setting takes more than one line:\n%s", logs)
			}
			if tc.code == 1 && !logs.contains(`"msg":"productd stopped with an error"`) {
				t.Errorf("no error line on the way out:\n%s", logs)
			}
			if strings.Contains(logs.String()+out.String(), secret) {
				t.Errorf("the password reached the output:\n%s%s", out.String(), logs)
			}
		})
	}
}
