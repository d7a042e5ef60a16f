package sandbox

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
)

// Redis is a private Redis: its own port, no snapshots, no append-only file,
// so that every start is empty, as a cache's restart is.
type Redis struct {
	d    *Dir
	dir  string
	port int
	proc *Process
}

// StartRedis starts a Redis on a free port.
func (d *Dir) StartRedis(ctx context.Context) (*Redis, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redis: %w (apt-get install redis-server)", err)
	}
	dir, err := d.Sub("redis")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	r := &Redis{d: d, dir: dir, port: port}
	d.onClose(func(context.Context) error { return r.Stop() })
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	d.log.WithField("port", port).Info("sandbox: redis started")
	return r, nil
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// URL is the server's URL, database 0.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// Start starts the server (again, after Stop) on its port and waits until it
// accepts connections.
func (r *Redis) Start(ctx context.Context) error {
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no")
	p, err := r.d.Start("redis", filepath.Join(r.dir, "redis.log"), cmd)
	if err != nil {
		return err
	}
	r.proc = p
	if err := awaitTCP(ctx, r.Addr(), p); err != nil {
		return fmt.Errorf("redis: %w\n%s", err, Tail(p.Log(), 10))
	}
	return nil
}

// Stop kills the server, losing everything it held, as a crash would.
// Stopping a stopped server is no error.
func (r *Redis) Stop() error {
	if r.proc == nil {
		return nil
	}
	return r.proc.Kill()
}
