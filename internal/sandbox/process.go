package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"
)

// Process is a child process of the run with its output in a log file.
type Process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// Start starts cmd as a process of the run named name: in a process group
// of its own (a Ctrl-C meant for the run reaches the run, which stops its
// processes in order, rather than every process at once), with the run's
// marker added to its environment (cmd.Env, or the caller's when nil), and
// with its output appended to logPath.
func (d *Dir) Start(name, logPath string, cmd *exec.Cmd) (*Process, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", name, err)
	}
	defer out.Close()
	if cmd.Env == nil {
		cmd.Env = d.Env()
	} else {
		cmd.Env = append(cmd.Env, MarkerVar+"="+d.path)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	if err := d.track(cmd.Process.Pid); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Log is the path of the process's log file.
func (p *Process) Log() string { return p.log }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Signal sends sig to the process's whole group.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s to %s: %w", sig, p.name, err)
	}
	return nil
}

// Stop sends SIGTERM and waits up to grace for the process to exit, then
// kills its group. It returns nil once the process is gone, however it ended.
func (p *Process) Stop(grace time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	return p.Kill()
}

// Kill sends SIGKILL to the process's group and waits for the process to
// exit.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s (pid %d) survived SIGKILL for 30s", p.name, p.Pid())
	}
}

// Wait waits for the process to exit or ctx to end.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// asUser returns a command that runs name with args as the system user
// account: through runuser when this process is root (Postgres and RabbitMQ
// refuse to run as root), directly otherwise, where the current user must
// own the service's directories.
func asUser(account, name string, args ...string) *exec.Cmd {
	if os.Geteuid() != 0 {
		return exec.Command(name, args...)
	}
	return exec.Command("runuser", append([]string{"-u", account, "--", name}, args...)...)
}

// chownTo gives the paths to the system user account when this process is
// root, so that a service running as that user can write there.
func chownTo(account string, paths ...string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(account)
	if err != nil {
		return fmt.Errorf("look up user %s: %w", account, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			return fmt.Errorf("give %s to %s: %w", p, account, err)
		}
	}
	return nil
}

// runLogged runs cmd to its end with the run's marker, returning its
// combined output in the error when it fails.
func (d *Dir) runLogged(ctx context.Context, cmd *exec.Cmd) (string, error) {
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Env = cmd.Env
	if c.Env == nil {
		c.Env = d.Env()
	}
	c.Dir = cmd.Dir
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w\n%s", c.String(), err, out)
	}
	return string(out), nil
}
