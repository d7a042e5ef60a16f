package audit

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Report is the outcome of Run: one Result per check.
type Report struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Results  []*Result     `json:"results"`
}

// Result is what one check found.
type Result struct {
	Check string `json:"check"`
	// Checked counts what the check looked at: products, rows, objects,
	// queues or cached products.
	Checked int64 `json:"checked"`
	// Violations counts every thing that breaks the invariant; Findings
	// lists the first of them.
	Violations int64     `json:"violations"`
	Findings   []Finding `json:"findings,omitempty"`
	// Skipped says why the check did not run; Error why it did not finish.
	Skipped  string        `json:"skipped,omitempty"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration_ns"`

	mu  sync.Mutex
	max int
}

// Finding is one thing that breaks an invariant.
type Finding struct {
	// Subject names it: "product 12", "outbox row 7", "object
	// products/12/0-ab.jpg", "queue productd.images.parking".
	Subject string `json:"subject"`
	// Detail says what is wrong with it.
	Detail string `json:"detail"`
}

// violation counts a violation and keeps it while the list has room.
func (r *Result) violation(subject, detail string) { r.violations(1, subject, detail) }

// violations counts n violations described by one finding.
func (r *Result) violations(n int64, subject, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Violations += n
	if len(r.Findings) < r.max {
		r.Findings = append(r.Findings, Finding{Subject: subject, Detail: detail})
	}
}

// checked counts n more things looked at.
func (r *Result) checked(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Checked += n
}

// Result returns the result of the named check, or nil.
func (r *Report) Result(check string) *Result {
	for _, res := range r.Results {
		if res.Check == check {
			return res
		}
	}
	return nil
}

// Violations counts the violations of every check.
func (r *Report) Violations() int64 {
	var n int64
	for _, res := range r.Results {
		n += res.Violations
	}
	return n
}

// Errors lists the checks that could not finish, with why.
func (r *Report) Errors() []string {
	var errs []string
	for _, res := range r.Results {
		if res.Error != "" {
			errs = append(errs, res.Check+": "+res.Error)
		}
	}
	return errs
}

// OK reports whether every check that ran finished and found nothing.
func (r *Report) OK() bool { return r.Violations() == 0 && len(r.Errors()) == 0 }

// WriteText writes the report for a person: a line per check, then the
// findings and errors.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tCHECKED\tVIOLATIONS\tTIME\tSTATE")
	for _, res := range r.Results {
		state := "ok"
		switch {
		case res.Skipped != "":
			state = "skipped: " + res.Skipped
		case res.Error != "":
			state = "failed to finish"
		case res.Violations > 0:
			state = "VIOLATED"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", res.Check, res.Checked, res.Violations, res.Duration.Round(time.Millisecond), state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	for _, res := range r.Results {
		if res.Error != "" {
			fmt.Fprintf(&b, "\n%s could not finish: %s\n", res.Check, res.Error)
		}
		if len(res.Findings) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s (%d):\n", res.Check, res.Violations)
		for _, f := range res.Findings {
			fmt.Fprintf(&b, "  %s: %s\n", f.Subject, f.Detail)
		}
		if more := res.Violations - int64(len(res.Findings)); more > 0 {
			fmt.Fprintf(&b, "  ... and %d more\n", more)
		}
	}
	verdict := "audit: every invariant holds"
	if !r.OK() {
		verdict = fmt.Sprintf("audit: %d violations, %d checks could not finish", r.Violations(), len(r.Errors()))
	}
	fmt.Fprintf(&b, "\n%s (%s)\n", verdict, r.Duration.Round(time.Millisecond))
	_, err := io.WriteString(w, b.String())
	return err
}
