package sandbox

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// These tests start real private services, never touching the shared ones:
// each runs in a scratch directory of its own under the test's temporary
// directory.

func open(t *testing.T) *Dir {
	t.Helper()
	d, err := Open("", quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close sandbox: %v", err)
		}
	})
	return d
}

func quietLogger() *logrus.Logger {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return log
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestPostgresSurvivesARestartAndGoesWithTheSandbox(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := open(t)
	pg, err := d.StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url, err := pg.CreateDatabase(ctx, "chaos_test", "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE t (v int); INSERT INTO t VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if _, err := pg.CreateDatabase(ctx, "copy", "chaos_test"); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.CreateDatabase(ctx, "copy", ""); err == nil {
		t.Error("a database was created twice")
	}

	conn, err = pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Error("a connection from before the restart still answers")
	}
	conn, err = pgx.Connect(ctx, pg.URL("copy"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, `SELECT v FROM t`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("after the restart: %d, %v", v, err)
	}
	if err := pg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(ctx); err != nil {
		t.Errorf("stopping a stopped cluster: %v", err)
	}
	if c, err := net.Dial("tcp", pg.Addr()); err == nil {
		c.Close()
		t.Error("the cluster still listens after Stop")
	}
}

func TestRedisStartsEmptyAfterAStop(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := open(t)
	r, err := d.StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opt, _ := redis.ParseURL(r.URL())
	client := redis.NewClient(opt)
	defer client.Close()
	if err := client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(ctx).Err(); err == nil {
		t.Fatal("redis answers after Stop")
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("after a restart the key reads %v, want it gone", err)
	}
}

func TestMinIOKeepsItsDataAcrossAStop(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := open(t)
	m, err := d.StartMinIO(ctx, "sandboxadmin", "sandboxsecret")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", m.Endpoint()); err == nil {
		c.Close()
		t.Fatal("minio still listens after Stop")
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.dir, "data", ".minio.sys")); err != nil {
		t.Errorf("minio's data directory: %v", err)
	}
}

// A run that dies without Close leaves its processes and directory behind;
// the next Open under the same root removes them, and leaves a live run's
// alone.
func TestOpenCleansUpWhatADeadRunLeft(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	root := t.TempDir()
	dead, err := Open(root, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	r, err := dead.StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sleeper, err := dead.Start("sleep", filepath.Join(dead.Path(), "sleep.log"), exec.Command("sleep", "600"))
	if err != nil {
		t.Fatal(err)
	}
	alive, err := Open(root, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer alive.Close()
	if _, err := os.Stat(dead.Path()); err != nil {
		t.Fatalf("a live run's directory was removed: %v", err)
	}
	_ = dead.lock.Close() // the run dies

	next, err := Open(root, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	select {
	case <-sleeper.Done():
	case <-time.After(10 * time.Second):
		t.Error("a dead run's process survived the next Open")
	}
	if c, err := net.Dial("tcp", r.Addr()); err == nil {
		c.Close()
		t.Error("a dead run's redis survived the next Open")
	}
	if _, err := os.Stat(dead.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a dead run's directory survived the next Open: %v", err)
	}
	if _, err := os.Stat(alive.Path()); err != nil {
		t.Errorf("a live run's directory was removed: %v", err)
	}
}

func TestProcessStopsGracefullyOrIsKilled(t *testing.T) {
	t.Parallel()
	d := open(t)
	obedient, err := d.Start("sleep", filepath.Join(d.Path(), "a.log"), exec.Command("sleep", "600"))
	if err != nil {
		t.Fatal(err)
	}
	if err := obedient.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	stubborn, err := d.Start("sh", filepath.Join(d.Path(), "b.log"), exec.Command("sh", "-c", `trap "" TERM; echo ready; while :; do sleep 1; done`))
	if err != nil {
		t.Fatal(err)
	}
	awaitLog(t, stubborn, "ready")
	if err := stubborn.Stop(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if done, _ := stubborn.Exited(); !done {
		t.Error("a process that ignores SIGTERM survived Stop")
	}
	if err := stubborn.Wait(context.Background()); err == nil {
		t.Error("a killed process exited without an error")
	}
	if _, err := d.Start("missing", filepath.Join(d.Path(), "c.log"), exec.Command("/nonexistent/binary")); err == nil {
		t.Error("a missing binary started")
	}
}

func awaitLog(t *testing.T, p *Process, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(p.Log())
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q", p.name, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
