package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Postgres is a private Postgres cluster: its own data directory in the
// scratch directory, its own port on 127.0.0.1, trusting local connections
// as user postgres.
type Postgres struct {
	d       *Dir
	bin     string
	dataDir string
	port    int
	log     string
}

// StartPostgres makes a cluster with initdb (as the postgres user when this
// process is root) and starts it.
func (d *Dir) StartPostgres(ctx context.Context) (*Postgres, error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	dir, err := d.Sub("postgres")
	if err != nil {
		return nil, err
	}
	if err := chownTo("postgres", dir); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p := &Postgres{d: d, bin: bin, dataDir: filepath.Join(dir, "data"), port: port, log: filepath.Join(dir, "postgres.log")}
	initdb := asUser("postgres", filepath.Join(bin, "initdb"),
		"-D", p.dataDir, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
	if _, err := d.runLogged(ctx, initdb); err != nil {
		return nil, fmt.Errorf("postgres: initdb: %w", err)
	}
	d.onClose(p.Stop)
	if err := p.pgCtl(ctx, "start"); err != nil {
		return nil, err
	}
	d.log.WithField("port", port).Info("sandbox: postgres started")
	return p, nil
}

// postgresBin finds the newest installed server's binaries.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if path, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(path), nil
	}
	return "", errors.New("postgres: no initdb under /usr/lib/postgresql/*/bin or on PATH (apt-get install postgresql)")
}

// version reads the major version from /usr/lib/postgresql/N/bin.
func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Addr is the cluster's host:port.
func (p *Postgres) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// URL returns the URL of database name on the cluster.
func (p *Postgres) URL(name string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: p.Addr(), Path: "/" + name, RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateDatabase creates database name, copied from template when it is
// not empty, and returns its URL.
func (p *Postgres) CreateDatabase(ctx context.Context, name, template string) (string, error) {
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(ctx)
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		return "", fmt.Errorf("postgres: create database %s: %w", name, err)
	}
	return p.URL(name), nil
}

// Restart stops the cluster (fast: open connections are closed, as a
// failover or an operator's restart would) and starts it again.
func (p *Postgres) Restart(ctx context.Context) error {
	return p.pgCtl(ctx, "restart")
}

// Stop stops the cluster; stopping a stopped cluster is no error.
func (p *Postgres) Stop(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(p.dataDir, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return p.pgCtl(ctx, "stop")
}

// pgCtl runs pg_ctl action, waiting for it to finish.
func (p *Postgres) pgCtl(ctx context.Context, action string) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300", p.port, filepath.Dir(p.dataDir))
	cmd := asUser("postgres", filepath.Join(p.bin, "pg_ctl"),
		"-D", p.dataDir, "-l", p.log, "-w", "-t", "120", "-m", "fast", "-o", opts, action)
	if _, err := p.d.runLogged(ctx, cmd); err != nil {
		return fmt.Errorf("postgres: pg_ctl %s: %w\n%s", action, err, Tail(p.log, 10))
	}
	if action == "stop" {
		return nil
	}
	// pg_ctl detaches the server: record it for a cleanup after a crash.
	b, err := os.ReadFile(filepath.Join(p.dataDir, "postmaster.pid"))
	if err != nil {
		return fmt.Errorf("postgres: read postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return fmt.Errorf("postgres: read postmaster.pid: %w", err)
	}
	return p.d.track(pid)
}
