package chaos

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/productd/productd/internal/sandbox"
)

// role is one productd process of the fleet: api, relay-1, worker-2, ...
type role struct {
	name string
	// cmd is the productd subcommand: api, relay or worker.
	cmd  string
	addr string
	env  []string
	log  string

	mu   sync.Mutex
	proc *sandbox.Process
	// starts counts the starts, for the log's separators.
	starts int
}

// fleet is the productd processes of one scenario: one api, two relays,
// two workers, each a process of the built binary with its own HTTP_ADDR.
type fleet struct {
	dir    *sandbox.Dir
	binary string
	roles  []*role
}

// roleNames are the fleet's processes, with their subcommands.
var roleNames = []struct{ name, cmd string }{
	{"api", "api"}, {"relay-1", "relay"}, {"relay-2", "relay"}, {"worker-1", "worker"}, {"worker-2", "worker"},
}

// newFleet prepares the processes: env is the environment they share,
// amqpURL gives each role its AMQP_URL (a proxy of its own, or a cluster's
// node list), logDir receives their logs.
func newFleet(dir *sandbox.Dir, binary, logDir string, env []string, amqpURL func(role string) string) (*fleet, error) {
	f := &fleet{dir: dir, binary: binary}
	for _, r := range roleNames {
		port, err := sandbox.FreePort()
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		roleEnv := append(append([]string(nil), env...), "HTTP_ADDR="+addr, "AMQP_URL="+amqpURL(r.name))
		f.roles = append(f.roles, &role{name: r.name, cmd: r.cmd, addr: addr, env: roleEnv, log: filepath.Join(logDir, r.name+".log")})
	}
	return f, nil
}

// role returns the named role.
func (f *fleet) role(name string) *role {
	for _, r := range f.roles {
		if r.name == name {
			return r
		}
	}
	panic("chaos: no role " + name)
}

// start starts every role and waits until each is ready.
func (f *fleet) start(ctx context.Context) error {
	for _, r := range f.roles {
		if err := f.startRole(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// startRole starts r (again) and waits until it is ready: the API answers
// /readyz, a relay has started and connected, a worker consumes.
func (f *fleet) startRole(ctx context.Context, r *role) error {
	r.mu.Lock()
	r.starts++
	if out, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		fmt.Fprintf(out, "----- chaos: start %d of %s at %s\n", r.starts, r.name, time.Now().Format(time.RFC3339Nano))
		out.Close()
	}
	cmd := exec.Command(f.binary, r.cmd)
	cmd.Env = r.env
	p, err := f.dir.Start("productd "+r.name, r.log, cmd)
	if err == nil {
		r.proc = p
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return r.awaitReady(ctx)
}

// readyMarks are log lines that say a role is at work.
var readyMarks = map[string][]string{
	"relay":  {`"msg":"relay: started"`, `"msg":"broker: connected"`},
	"worker": {`"msg":"broker: consuming"`},
}

func (r *role) awaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	since := r.logSize()
	for {
		if done, err := r.process().Exited(); done {
			return fmt.Errorf("productd %s exited at start (%v):\n%s", r.name, err, sandbox.Tail(r.log, 20))
		}
		if r.cmd == "api" {
			if resp, err := client.Get("http://" + r.addr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		} else if r.logHas(since, readyMarks[r.cmd]...) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("productd %s never became ready: %w\n%s", r.name, ctx.Err(), sandbox.Tail(r.log, 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *role) process() *sandbox.Process {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

func (r *role) logSize() int64 {
	st, err := os.Stat(r.log)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logHas reports whether the log, from offset since on, holds every mark.
func (r *role) logHas(since int64, marks ...string) bool {
	b, err := os.ReadFile(r.log)
	if err != nil || int64(len(b)) < since {
		return false
	}
	for _, m := range marks {
		if !strings.Contains(string(b[since:]), m) {
			return false
		}
	}
	return true
}

// kill SIGKILLs the role, as a crash or the OOM killer would.
func (r *role) kill() error { return r.process().Kill() }

// stop stops every role with SIGTERM, as a deployment does, and kills those
// still running after grace.
func (f *fleet) stop(grace time.Duration) error {
	var wg sync.WaitGroup
	errs := make([]error, len(f.roles))
	for i, r := range f.roles {
		p := r.process()
		if p == nil {
			continue
		}
		wg.Go(func() { errs[i] = p.Stop(grace) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// crashed lists the roles whose process exited although nobody stopped it.
func (f *fleet) crashed() []string {
	var names []string
	for _, r := range f.roles {
		if done, err := r.process().Exited(); done {
			names = append(names, fmt.Sprintf("%s (%v)", r.name, err))
		}
	}
	return names
}
