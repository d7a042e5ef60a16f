package chaos

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Row is one scenario's outcome.
type Row struct {
	Scenario string `json:"scenario"`
	Title    string `json:"title"`
	// Created counts the products whose create was acknowledged (201).
	Created int `json:"created"`
	// Lost counts acknowledged products that are gone from the database,
	// never reached done or failed, or are done without their compressed
	// images in the bucket.
	Lost int `json:"lost"`
	// Duplicated counts products created twice for one request and objects
	// in the bucket beyond those the products list.
	Duplicated int `json:"duplicated"`
	// WrongStatus counts products that ended otherwise than they must: a
	// valid image failed, or an unusable one done.
	WrongStatus int `json:"wrong_status"`
	// Recovery is how long after the fault ended every product created
	// before that had reached done or failed; negative when some never did.
	Recovery time.Duration `json:"recovery_ns"`
	// MaxCreateLatency is the longest create (retries included) in flight
	// during the fault.
	MaxCreateLatency time.Duration `json:"max_create_latency_ns"`
	// Audit is productd audit's verdict after the system settled.
	Audit string `json:"audit"`
	// Problems lists what else went wrong: a process that crashed by itself,
	// a fault the suite could not inject, an audit violation.
	Problems []string `json:"problems,omitempty"`
	// Notes are observations that fail nothing, such as a process that
	// took longer than its shutdown timeout to stop.
	Notes    []string      `json:"notes,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Pass reports whether the scenario lost, duplicated and mis-statused
// nothing and met no other problem.
func (r Row) Pass() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.WrongStatus == 0 && len(r.Problems) == 0 && r.Created > 0
}

// Table is a run's rows.
type Table struct {
	Rows     []Row         `json:"rows"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
}

// Pass reports whether every scenario passed.
func (t *Table) Pass() bool {
	for _, r := range t.Rows {
		if !r.Pass() {
			return false
		}
	}
	return len(t.Rows) > 0
}

// WriteMarkdown writes the table as Markdown, then the problems of the rows
// that have some.
func (t *Table) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| scenario | created | lost | duplicated | wrong status | recovery | max create latency | audit | verdict |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|---|---|\n")
	for _, r := range t.Rows {
		verdict := "pass"
		if !r.Pass() {
			verdict = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s | %s | %s | %s |\n",
			r.Scenario, r.Created, r.Lost, r.Duplicated, r.WrongStatus, seconds(r.Recovery), seconds(r.MaxCreateLatency), r.Audit, verdict)
	}
	for _, r := range t.Rows {
		if len(r.Problems)+len(r.Notes) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n", r.Scenario)
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- note: %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func seconds(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}
