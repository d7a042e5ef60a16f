package api

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// Check reports whether a dependency is reachable; /readyz runs every one.
type Check func(ctx context.Context) error

// Checks is what /readyz checks, by dependency name ("postgres",
// "rabbitmq", "storage", ...). Each part of a process adds the checks of
// the dependencies it needs as it starts, while the server may already be
// answering; Expect keeps a dependency unready until its part has added
// its check. Checks is safe for concurrent use; its zero value is empty.
//
// A dependency is up when every check added under its name passes. A
// required dependency that is down makes the process unready (503); an
// optional one only degrades it: the process serves without it, slower.
type Checks struct {
	mu   sync.Mutex
	deps map[string]*dependency
}

type dependency struct {
	required []Check
	optional []Check
	// expected counts Expect calls not yet met by an Add.
	expected int
}

// errNotStarted is the state of an expected dependency whose check has not
// been added yet.
var errNotStarted = errors.New("its check has not been added yet: the part of the process that uses it is starting")

// Add registers check for dependency name, which the process needs to do
// its job, and meets one Expect of name.
func (cs *Checks) Add(name string, check Check) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	d := cs.dependency(name)
	d.required = append(d.required, check)
	d.expected = max(d.expected-1, 0)
}

// AddOptional registers check for dependency name, which the process can
// serve without, only worse (Redis: reads go to Postgres). Its failure is
// reported as degraded and logged; the process stays ready.
func (cs *Checks) AddOptional(name string, check Check) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	d := cs.dependency(name)
	d.optional = append(d.optional, check)
}

// Expect declares that a part of the process that is still starting will
// Add a check for name: until it does, name is unavailable. Each call
// expects one more Add.
func (cs *Checks) Expect(name string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.dependency(name).expected++
}

func (cs *Checks) dependency(name string) *dependency {
	if cs.deps == nil {
		cs.deps = make(map[string]*dependency)
	}
	d, ok := cs.deps[name]
	if !ok {
		d = &dependency{}
		cs.deps[name] = d
	}
	return d
}

// readiness is the outcome of running the checks: the dependencies that are
// down, required and optional, with the first error of each.
type readiness struct {
	down     map[string]error
	degraded map[string]error
}

// run runs every check at once and waits for all of them.
func (cs *Checks) run(ctx context.Context) readiness {
	r := readiness{down: map[string]error{}, degraded: map[string]error{}}
	if cs == nil {
		return r
	}
	type job struct {
		name     string
		check    Check
		optional bool
	}
	var jobs []job
	cs.mu.Lock()
	for name, d := range cs.deps {
		if d.expected > 0 {
			r.down[name] = errNotStarted
		}
		for _, c := range d.required {
			jobs = append(jobs, job{name, c, false})
		}
		for _, c := range d.optional {
			jobs = append(jobs, job{name, c, true})
		}
	}
	cs.mu.Unlock()

	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := j.check(ctx)
			if err == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			into := r.down
			if j.optional {
				into = r.degraded
			}
			if _, seen := into[j.name]; !seen {
				into[j.name] = err
			}
		}()
	}
	wg.Wait()
	// A dependency down for a required check is not also degraded.
	for name := range r.down {
		delete(r.degraded, name)
	}
	return r
}

// names returns the sorted names of a readiness map.
func names(m map[string]error) []string {
	out := make([]string, 0, len(m))
	for name := range m {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
