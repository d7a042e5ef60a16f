package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitBin is where the Debian package keeps RabbitMQ's own scripts; the
// wrappers on PATH pin the packaged node's settings.
const rabbitBin = "/usr/lib/rabbitmq/bin"

// RabbitNode is a private RabbitMQ node: its own node name, AMQP and
// distribution ports, configuration, database and logs, run as the
// rabbitmq user. It shares the machine's Erlang cookie and epmd, so that
// rabbitmqctl reaches it, and nothing else with the pre-started node.
type RabbitNode struct {
	d       *Dir
	name    string
	dir     string
	port    int
	pidFile string
	proc    *Process
}

// StartRabbitNode starts a node named name@localhost (name must be unique
// on the machine: include something of the run in it) and waits until it
// accepts AMQP connections.
func (d *Dir) StartRabbitNode(ctx context.Context, name string) (*RabbitNode, error) {
	if _, err := os.Stat(filepath.Join(rabbitBin, "rabbitmq-server")); err != nil {
		return nil, fmt.Errorf("rabbitmq: %w (apt-get install rabbitmq-server)", err)
	}
	dir, err := d.Sub("rabbitmq-" + name)
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	distPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	n := &RabbitNode{d: d, name: name + "@localhost", dir: dir, port: port, pidFile: filepath.Join(dir, "pid")}
	files := map[string]string{
		"rabbitmq.conf":   fmt.Sprintf("listeners.tcp.local = 127.0.0.1:%d\n", port),
		"enabled_plugins": "[].\n",
		// Read instead of /etc/rabbitmq/rabbitmq-env.conf, which names the
		// pre-started node.
		"rabbitmq-env.conf": "",
	}
	for file, content := range files {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("rabbitmq: write %s: %w", file, err)
		}
	}
	for _, sub := range []string{"mnesia", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("rabbitmq: %w", err)
		}
	}
	if err := chownTo("rabbitmq", dir, filepath.Join(dir, "mnesia"), filepath.Join(dir, "log")); err != nil {
		return nil, err
	}
	cmd := asUser("rabbitmq", filepath.Join(rabbitBin, "rabbitmq-server"))
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_NODENAME=" + n.name,
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(distPort),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE=" + n.pidFile,
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_FEATURE_FLAGS_FILE=" + filepath.Join(dir, "feature_flags"),
		"RABBITMQ_PLUGINS_EXPAND_DIR=" + filepath.Join(dir, "plugins-expand"),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_FLAGS=-kernel inet_dist_use_interface {127,0,0,1}",
	}
	n.proc, err = d.Start("rabbitmq "+n.name, filepath.Join(dir, "server.log"), cmd)
	if err != nil {
		return nil, err
	}
	d.onClose(n.Stop)
	if err := n.awaitAMQP(ctx); err != nil {
		return nil, err
	}
	d.log.WithFields(map[string]any{"node": n.name, "port": port}).Info("sandbox: rabbitmq node started")
	return n, nil
}

// Name is the node's Erlang name, name@localhost.
func (n *RabbitNode) Name() string { return n.name }

// Addr is the node's AMQP host:port.
func (n *RabbitNode) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// URL is the AMQP URL of vhost on the node, as user guest.
func (n *RabbitNode) URL(vhost string) string {
	u := url.URL{Scheme: "amqp", User: url.UserPassword("guest", "guest"), Host: n.Addr(), Path: "/" + vhost}
	return u.String()
}

// Ctl runs rabbitmqctl against this node and returns its output.
func (n *RabbitNode) Ctl(ctx context.Context, args ...string) (string, error) {
	return n.cli(ctx, "rabbitmqctl", args...)
}

// cli runs one of RabbitMQ's command line tools against this node.
func (n *RabbitNode) cli(ctx context.Context, tool string, args ...string) (string, error) {
	cmd := exec.Command(tool, append([]string{"-n", n.name, "-q"}, args...)...)
	out, err := n.d.runLogged(ctx, cmd)
	if err != nil {
		return "", fmt.Errorf("rabbitmq %s: %w", n.name, err)
	}
	return out, nil
}

// AddVhost creates vhost and lets guest use all of it.
func (n *RabbitNode) AddVhost(ctx context.Context, vhost string) error {
	if _, err := n.Ctl(ctx, "add_vhost", vhost); err != nil {
		return err
	}
	_, err := n.Ctl(ctx, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
	return err
}

// StopApp stops the RabbitMQ application, closing every connection and
// refusing new ones, while the Erlang node stays up.
func (n *RabbitNode) StopApp(ctx context.Context) error {
	_, err := n.Ctl(ctx, "stop_app")
	return err
}

// StartApp starts the application again after StopApp and waits until it
// accepts AMQP connections.
func (n *RabbitNode) StartApp(ctx context.Context) error {
	if _, err := n.Ctl(ctx, "start_app"); err != nil {
		return err
	}
	return n.awaitAMQP(ctx)
}

// CloseAllConnections closes every client connection to the node, in
// every vhost.
func (n *RabbitNode) CloseAllConnections(ctx context.Context, reason string) error {
	_, err := n.Ctl(ctx, "close_all_connections", "--global", reason)
	return err
}

// Kill SIGKILLs the node's Erlang VM, as a crash of its machine would.
func (n *RabbitNode) Kill() error {
	if err := n.proc.Kill(); err != nil {
		return err
	}
	// The shell that ran the VM is gone with its group; the VM too.
	if pid, err := n.vmPid(); err == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

// Restart starts a node that was stopped or killed again, with its data:
// a cluster member rejoins its cluster.
func (n *RabbitNode) Restart(ctx context.Context) error {
	if done, _ := n.proc.Exited(); !done {
		return fmt.Errorf("rabbitmq %s: restart of a running node", n.name)
	}
	cmd := exec.Command(n.proc.cmd.Path, n.proc.cmd.Args[1:]...)
	cmd.Dir, cmd.Env = n.proc.cmd.Dir, n.proc.cmd.Env
	p, err := n.d.Start("rabbitmq "+n.name, filepath.Join(n.dir, "server.log"), cmd)
	if err != nil {
		return err
	}
	n.proc = p
	return n.awaitAMQP(ctx)
}

// Stop stops the node: gracefully through rabbitmqctl, or by killing it
// when that fails. Stopping a node that is not running is no error.
func (n *RabbitNode) Stop(ctx context.Context) error {
	if done, _ := n.proc.Exited(); done {
		return nil
	}
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := n.Ctl(stopCtx, "stop"); err == nil {
		select {
		case <-n.proc.Done():
			return nil
		case <-time.After(30 * time.Second):
		}
	}
	return n.Kill()
}

// JoinCluster makes this node a member of the cluster of other. The node
// must not hold data of its own yet.
func (n *RabbitNode) JoinCluster(ctx context.Context, other *RabbitNode) error {
	if err := n.StopApp(ctx); err != nil {
		return err
	}
	if _, err := n.Ctl(ctx, "join_cluster", other.name); err != nil {
		return err
	}
	return n.StartApp(ctx)
}

// QueueLeader returns the name of the node that leads the quorum queue, as
// rabbitmq-queues quorum_status reports it from this node.
func (n *RabbitNode) QueueLeader(ctx context.Context, vhost, queue string) (string, error) {
	out, err := n.cli(ctx, "rabbitmq-queues", "quorum_status", queue, "--vhost", vhost, "--formatter", "json")
	if err != nil {
		return "", err
	}
	var members []map[string]any
	if err := json.Unmarshal([]byte(out), &members); err != nil {
		return "", fmt.Errorf("rabbitmq: read quorum_status of %s: %w: %s", queue, err, out)
	}
	for _, m := range members {
		for k, v := range m {
			if strings.EqualFold(strings.ReplaceAll(k, "_", " "), "raft state") && v == "leader" {
				if name, ok := m["Node Name"].(string); ok {
					return name, nil
				}
			}
		}
	}
	return "", fmt.Errorf("rabbitmq: quorum queue %s has no leader now: %s", queue, out)
}

// vmPid reads the Erlang VM's pid from the node's pid file.
func (n *RabbitNode) vmPid() (int, error) {
	b, err := os.ReadFile(n.pidFile)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// awaitAMQP waits until the node completes an AMQP handshake, failing early
// when the node's process has exited.
func (n *RabbitNode) awaitAMQP(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := await(ctx, "rabbitmq "+n.name+" to accept connections", func() error {
		if done, err := n.proc.Exited(); done {
			return errors.Join(errExited, err)
		}
		conn, err := amqp.DialConfig(n.URL(""), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
		if err != nil {
			return err
		}
		return conn.Close()
	})
	if err != nil {
		return fmt.Errorf("%w\n%s", err, Tail(n.proc.log, 15))
	}
	pid, err := n.vmPid()
	if err != nil {
		return fmt.Errorf("rabbitmq %s: read its pid: %w", n.name, err)
	}
	return n.d.track(pid)
}

// errExited says that a service's process exited while it was awaited.
var errExited = errors.New("the process exited")
