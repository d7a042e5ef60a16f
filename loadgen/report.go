package loadgen

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// counters are a run's live counts, read by the progress line.
type counters struct {
	started, created, refused, retried, listErrors atomic.Int64
}

// Percentiles summarise a set of durations.
type Percentiles struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P95 time.Duration `json:"p95_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// percentiles sorts ds in place and reads them.
func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1)+0.5)] }
	return Percentiles{N: len(ds), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ds[len(ds)-1]}
}

func (p Percentiles) String() string {
	if p.N == 0 {
		return "-"
	}
	r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s", r(p.P50), r(p.P95), r(p.P99), r(p.Max))
}

// Report is the outcome of a run.
type Report struct {
	UserID int64 `json:"user_id"`
	// Creating is how long the creating took, from the first request to the
	// last answer.
	Creating time.Duration `json:"creating_ns"`
	// Started counts the products whose create was sent; Created those
	// acknowledged (201); Refused those given up on.
	Started int `json:"started"`
	Created int `json:"created"`
	Refused int `json:"refused"`
	// Retries counts the create requests sent again after a failure.
	Retries int64 `json:"retries"`
	// CreatedPerSecond is Created over Creating.
	CreatedPerSecond float64 `json:"created_per_second"`
	// CreateLatency is the time from a create's first request to its 201;
	// CreateToDone the time from a product's creation to its done status,
	// by the server's clock.
	CreateLatency Percentiles `json:"create_latency"`
	CreateToDone  Percentiles `json:"create_to_done"`
	// Done, Failed and Unsettled count the created products by how they
	// ended; Unsettled ones never ended within FollowFor.
	Done      int `json:"done"`
	Failed    int `json:"failed"`
	Unsettled int `json:"unsettled"`
	// WrongOutcome counts products that ended otherwise than their kind
	// must: a valid image failed, or an invalid one done.
	WrongOutcome int `json:"wrong_outcome"`
	// Failures counts refused creates and failed products by reason.
	Failures map[string]int `json:"failures"`
	// Products records every product, with Config.KeepProducts.
	Products []*Product `json:"products,omitempty"`
}

// OK reports whether every product was created and ended as it must.
func (r *Report) OK() bool {
	return r.Refused == 0 && r.Unsettled == 0 && r.WrongOutcome == 0 && r.Created == r.Started
}

// urlInReason matches the URL an image error quotes, which differs for
// every product.
var urlInReason = regexp.MustCompile(`\s*\([a-z]+://[^)]*\)`)

// reasonOf groups a failed product's image error: without the URL it names.
func reasonOf(imageError string) string {
	return "image: " + urlInReason.ReplaceAllString(imageError, "")
}

// summarise builds the report of a run from its products.
func summarise(products []*Product, creating time.Duration, retries int64, keep bool) *Report {
	r := &Report{Creating: creating, Retries: retries, Failures: map[string]int{}, Started: len(products)}
	var latencies, toDone []time.Duration
	for _, p := range products {
		if p.ID == 0 {
			r.Refused++
			r.Failures["create: "+p.Refused]++
			continue
		}
		r.Created++
		latencies = append(latencies, p.Latency)
		switch {
		case !p.Settled:
			r.Unsettled++
		case p.Status == "done":
			r.Done++
			toDone = append(toDone, p.UpdatedAt.Sub(p.CreatedAt))
		default:
			r.Failed++
			r.Failures[reasonOf(p.Error)]++
		}
		if p.Settled && p.Status != p.Kind.Want() {
			r.WrongOutcome++
		}
	}
	r.CreateLatency, r.CreateToDone = percentiles(latencies), percentiles(toDone)
	if creating > 0 {
		r.CreatedPerSecond = float64(r.Created) / creating.Seconds()
	}
	if keep {
		r.Products = products
	}
	return r
}

// WriteText writes the report for a person.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "products\t%d started, %d created (%.1f/s over %s), %d refused, %d retries\n",
		r.Started, r.Created, r.CreatedPerSecond, r.Creating.Round(time.Millisecond), r.Refused, r.Retries)
	fmt.Fprintf(tw, "ended\t%d done, %d failed, %d unsettled, %d not as they should\n", r.Done, r.Failed, r.Unsettled, r.WrongOutcome)
	fmt.Fprintf(tw, "create latency\t%s\n", r.CreateLatency)
	fmt.Fprintf(tw, "create -> done\t%s\n", r.CreateToDone)
	reasons := make([]string, 0, len(r.Failures))
	for reason := range r.Failures {
		reasons = append(reasons, reason)
	}
	sort.Slice(reasons, func(i, j int) bool { return r.Failures[reasons[i]] > r.Failures[reasons[j]] })
	for _, reason := range reasons {
		fmt.Fprintf(tw, "failures\t%6d  %s\n", r.Failures[reason], reason)
	}
	return tw.Flush()
}

// progress writes one line of the run's state.
func (r *runner) progress(w io.Writer, elapsed time.Duration) {
	tracked, unsettled := r.tracker.counts()
	created := r.stats.created.Load()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(created) / elapsed.Seconds()
	}
	line := fmt.Sprintf("[%4.0fs] created %d (%.1f/s)  settled %d  waiting %d  in flight %d  refused %d  retries %d",
		elapsed.Seconds(), created, rate, tracked-unsettled, unsettled,
		r.stats.started.Load()-created-r.stats.refused.Load(), r.stats.refused.Load(), r.stats.retried.Load())
	if n := r.stats.listErrors.Load(); n > 0 {
		line += fmt.Sprintf("  list errors %d", n)
	}
	fmt.Fprintln(w, strings.TrimSpace(line))
}
