// Package sandbox runs private instances of the services productd depends on
// (Postgres, RabbitMQ, Redis, MinIO) in a scratch directory and on ports of
// their own, so that a chaos test can stop, kill and restart them without
// touching the shared instances on the default ports that every other test
// and every shell on the machine uses.
//
// A Dir is one run's scratch directory. It records every process started
// through it (and the servers those start in the background) in a file of
// its own, and gives them the variable PRODUCTD_SANDBOX set to its path;
// Close stops them and removes the directory. A run that dies without Close
// (SIGKILL, a crash) leaves its directory and processes behind: the next Open
// under the same root finds them through that file and that variable and
// removes them. Runs that are alive hold a lock on their directory, so two
// runs side by side never clean up each other.
package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// MarkerVar is the environment variable that names the sandbox a process
// belongs to.
const MarkerVar = "PRODUCTD_SANDBOX"

// dirPrefix starts the name of every scratch directory under a root.
const dirPrefix = "productd-sandbox-"

// Dir is the scratch directory of one run. Its methods are safe for
// concurrent use.
type Dir struct {
	path string
	lock *os.File
	log  *logrus.Entry

	mu    sync.Mutex
	stops []func(context.Context) error
}

// Open removes what dead runs left under root (os.TempDir() when empty),
// then makes a scratch directory there for this run. Close it when done.
func Open(root string, log *logrus.Logger) (*Dir, error) {
	if root == "" {
		root = os.TempDir()
	}
	entry := log.WithField("component", "sandbox")
	if err := CleanLeftovers(root, entry); err != nil {
		return nil, err
	}
	path, err := os.MkdirTemp(root, dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("make scratch directory: %w", err)
	}
	// Services run as their own users (postgres, rabbitmq) and must reach
	// their directories below this one.
	if err := os.Chmod(path, 0o755); err != nil {
		return nil, fmt.Errorf("open scratch directory %s: %w", path, err)
	}
	lock, err := lockDir(path)
	if err != nil {
		_ = os.RemoveAll(path)
		return nil, err
	}
	entry.WithField("dir", path).Info("sandbox: scratch directory ready")
	return &Dir{path: path, lock: lock, log: entry.WithField("dir", path)}, nil
}

// Path is the scratch directory.
func (d *Dir) Path() string { return d.path }

// Sub returns a subdirectory of the scratch directory, made if missing.
func (d *Dir) Sub(name string) (string, error) {
	p := filepath.Join(d.path, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", fmt.Errorf("make %s: %w", p, err)
	}
	return p, nil
}

// Env is the environment of a process started for this run: the caller's,
// plus the marker that lets a later run find it, plus extra (NAME=value).
func (d *Dir) Env(extra ...string) []string {
	env := append(os.Environ(), MarkerVar+"="+d.path)
	return append(env, extra...)
}

// onClose registers stop to run at Close, before the ones registered
// earlier.
func (d *Dir) onClose(stop func(context.Context) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stops = append(d.stops, stop)
}

// Close stops every service in the reverse order of their start, kills any
// process of the run still alive, and removes the scratch directory. It
// returns the errors met on the way, having done all it could.
func (d *Dir) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d.mu.Lock()
	stops := d.stops
	d.stops = nil
	d.mu.Unlock()
	var errs []error
	for i := len(stops) - 1; i >= 0; i-- {
		if err := stops[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := killLeftovers(d.path); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(d.path); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", d.path, err))
	}
	_ = d.lock.Close()
	d.log.Info("sandbox: removed")
	return errors.Join(errs...)
}

// CleanLeftovers removes the scratch directories under root whose runs are
// dead, after killing every process that still carries their marker.
func CleanLeftovers(root string, log *logrus.Entry) error {
	dirs, err := filepath.Glob(filepath.Join(root, dirPrefix+"*"))
	if err != nil {
		return fmt.Errorf("list sandboxes under %s: %w", root, err)
	}
	var errs []error
	for _, dir := range dirs {
		lock, err := lockDir(dir)
		if err != nil {
			continue // alive: its run holds the lock
		}
		err = killLeftovers(dir)
		if err == nil {
			err = os.RemoveAll(dir)
		}
		_ = lock.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("clean up the leftovers of %s: %w", dir, err))
			continue
		}
		log.WithField("dir", dir).Warn("sandbox: removed what a dead run left behind")
	}
	return errors.Join(errs...)
}

// lockDir takes the run's lock on dir, failing at once when a live run
// holds it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the lock of %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// pidsFile lists the processes of a run, one "pid start-time" a line.
const pidsFile = ".pids"

// track records pid as a process of the run, with its start time so that a
// later cleanup never kills another process that reuses the pid.
func (d *Dir) track(pid int) error {
	start, ok := startTime(pid)
	if !ok {
		return nil // already gone
	}
	f, err := os.OpenFile(filepath.Join(d.path, pidsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("record process %d: %w", pid, err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%d %s\n", pid, start); err != nil {
		return fmt.Errorf("record process %d: %w", pid, err)
	}
	return nil
}

// killLeftovers SIGKILLs every process of the run in dir that is still
// alive, with its process group: those recorded by track, and those whose
// environment carries the run's marker (servers such as Redis and Postgres
// overwrite their environment with their process titles, hence the record).
// It waits until they are gone.
func killLeftovers(dir string) error {
	marker := []byte(MarkerVar + "=" + dir + "\x00")
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := append(trackedProcesses(dir), markedProcesses(marker)...)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of %s survive SIGKILL", pids, dir)
		}
		for _, pid := range pids {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// trackedProcesses lists the processes recorded in dir that are still the
// same processes and alive.
func trackedProcesses(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, pidsFile))
	if err != nil {
		return nil
	}
	var pids []int
	for _, line := range strings.Split(string(b), "\n") {
		pidText, start, ok := strings.Cut(line, " ")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil {
			continue
		}
		if now, alive := startTime(pid); alive && now == start {
			pids = append(pids, pid)
		}
	}
	return pids
}

// startTime reads when pid started, in clock ticks since boot (field 22 of
// /proc/PID/stat); ok is false when no such process lives (zombies
// included: they are dead, only waiting for their parent).
func startTime(pid int) (string, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "", false
	}
	// After the command: state (field 3) ... starttime (field 22).
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 || fields[0] == "Z" {
		return "", false
	}
	return fields[19], true
}

// markedProcesses lists the live processes whose environment holds marker.
func markedProcesses(marker []byte) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append(env, 0), marker) {
			continue
		}
		if _, alive := startTime(pid); alive {
			pids = append(pids, pid)
		}
	}
	return pids
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// awaitTCP waits up to a minute until proc accepts connections on addr.
func awaitTCP(ctx context.Context, addr string, proc *Process) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return await(ctx, "a listener on "+addr, func() error {
		if done, err := proc.Exited(); done {
			return errors.Join(errExited, err)
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err
	})
}

// await polls check until it succeeds, fails with errExited, or ctx ends;
// the error then says what was awaited and how the last check failed.
func await(ctx context.Context, what string, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		if errors.Is(err, errExited) {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Tail returns the last lines of a log file, for an error that needs them.
func Tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
