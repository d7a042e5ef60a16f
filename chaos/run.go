package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/productd/productd/audit"
	"github.com/productd/productd/internal/sandbox"
	"github.com/productd/productd/loadgen"
)

// runScenario runs one scenario from a fresh deployment to its row.
func runScenario(ctx context.Context, cfg Config, svc *services, sc Scenario, say func(string, ...any)) (row Row) {
	row = Row{Scenario: sc.Name, Title: sc.Title}
	begin := time.Now()
	defer func() { row.Duration = time.Since(begin) }()
	sayf := func(format string, args ...any) { say(sc.Name+": "+format, args...) }
	problem := func(format string, args ...any) {
		row.Problems = append(row.Problems, fmt.Sprintf(format, args...))
	}
	sayf("%s; %d products at %.0f/s", sc.Title, cfg.Products, cfg.Rate)

	nodes := []*sandbox.RabbitNode{svc.node}
	if sc.Cluster {
		sayf("starting a three-node RabbitMQ cluster")
		var err error
		if nodes, err = svc.startCluster(ctx); err != nil {
			problem("start the cluster: %v", err)
			return row
		}
	}
	d, err := newDeployment(ctx, svc, sc.Name, nodes, cfg.Binary)
	if d != nil {
		defer func() {
			if err := d.close(); err != nil {
				row.Notes = append(row.Notes, fmt.Sprintf("stopping the fleet: %v", err))
			}
			if err := d.keepLogs(cfg.LogDir); err != nil {
				row.Notes = append(row.Notes, err.Error())
			}
		}()
	}
	if err != nil {
		problem("deploy: %v", err)
		return row
	}

	type loadResult struct {
		report *loadgen.Report
		err    error
	}
	reports := make(chan loadResult, 1)
	go func() {
		rep, err := loadgen.Run(ctx, loadgen.Config{
			BaseURL: d.apiURL(), Rate: cfg.Rate, Count: cfg.Products, Concurrency: 64,
			Images: svc.images, KeepProducts: true, RetryFor: 5 * time.Minute, FollowFor: cfg.SettleFor,
			Progress: &prefixWriter{w: cfg.Out, prefix: "  " + sc.Name + " load "}, ProgressInterval: 10 * time.Second,
		})
		reports <- loadResult{rep, err}
	}()

	// The fault comes once a fifth of the products are in.
	st := &stage{deployment: d, outage: cfg.Outage, say: sayf}
	faultBegin := time.Now()
	if err := st.hold(ctx, time.Duration(float64(cfg.Products)/5/cfg.Rate*float64(time.Second))); err == nil {
		faultBegin = time.Now()
		if err := sc.Fault(ctx, st); err != nil {
			problem("fault: %v", err)
		}
	}
	downAt, upAt := st.window()
	if downAt.IsZero() {
		downAt = faultBegin
	}
	if upAt.IsZero() {
		upAt = time.Now()
	}

	load := <-reports
	if load.err != nil {
		problem("load: %v", load.err)
		return row
	}
	rep := load.report
	sayf("load done: %d created (%.1f/s), %d done, %d failed, %d unsettled; create %s", rep.Created, rep.CreatedPerSecond,
		rep.Done, rep.Failed, rep.Unsettled, rep.CreateLatency)
	// Following the products and emptying the queues share one budget.
	var lastCreate time.Time
	for _, p := range rep.Products {
		if end := p.Requested.Add(p.Latency); end.After(lastCreate) {
			lastCreate = end
		}
	}
	if err := d.settle(ctx, max(time.Until(lastCreate.Add(cfg.SettleFor)), 30*time.Second)); err != nil {
		problem("settle: %v", err)
	}
	for _, name := range d.fleet.crashed() {
		problem("%s exited by itself", name)
	}
	report, err := audit.Run(ctx, audit.Config{
		DB: d.pool, Store: d.store, Redis: d.redis, CachePrefix: d.prefix, AMQPURL: d.nodeURLs(),
		StuckAfter: time.Nanosecond, PendingAfter: time.Nanosecond, ObjectGrace: time.Nanosecond,
	})
	if err != nil {
		problem("audit: %v", err)
		return row
	}
	measure(ctx, d, rep, report, downAt, upAt, &row, problem)
	return row
}

// settle waits until no outbox row is pending, the work queue and the
// retry queues are empty, and no upload is left that no product owns (the
// uploads sweep's to remove): the system has done all it will do. Its error
// says what was left.
func (d *deployment) settle(ctx context.Context, limit time.Duration) error {
	var left string
	err := awaitCondition(ctx, limit, "the outbox and the queues to empty", func() (bool, error) {
		var pending int
		if err := d.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE status = 'pending'`).Scan(&pending); err != nil {
			left = "the database: " + err.Error() // Postgres may be coming back
			return false, nil
		}
		if pending > 0 {
			left = fmt.Sprintf("%d outbox rows pending", pending)
			return false, nil
		}
		var unowned int
		if err := d.pool.QueryRow(ctx, `SELECT count(*) FROM uploads WHERE state <> 'owned'`).Scan(&unowned); err != nil {
			left = "the database: " + err.Error()
			return false, nil
		}
		if unowned > 0 {
			left = fmt.Sprintf("%d uploads no product owns, for the uploads sweep", unowned)
			return false, nil
		}
		depths, err := d.queueDepths(ctx)
		if err != nil {
			left = "the broker: " + err.Error()
			return false, nil
		}
		var full []string
		for _, q := range d.topo.Queues() {
			if n := depths[q]; q != d.topo.ParkingQueue && n > 0 {
				full = append(full, fmt.Sprintf("%s: %d", q, n))
			}
		}
		sort.Strings(full)
		left = "messages in " + strings.Join(full, ", ")
		return len(full) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("%w; left: %s", err, left)
	}
	return nil
}

// nodeURLs lists the direct URLs of every node of the scenario.
func (d *deployment) nodeURLs() string {
	var urls []string
	for i := range d.nodes {
		urls = append(urls, d.nodeURL(i))
	}
	return strings.Join(urls, ",")
}

// measure fills the row from what the load generator saw, what the
// database holds and what the audit found.
func measure(ctx context.Context, d *deployment, rep *loadgen.Report, report *audit.Report, downAt, upAt time.Time, row *Row, problem func(string, ...any)) {
	row.Created = rep.Created
	status := map[int64]string{}
	names := map[string]int{}
	rows, err := d.pool.Query(ctx, `SELECT id, image_status, product_name FROM products WHERE user_id = $1`, rep.UserID)
	if err != nil {
		problem("read the products: %v", err)
		return
	}
	for rows.Next() {
		var id int64
		var s, name string
		if err := rows.Scan(&id, &s, &name); err != nil {
			problem("read the products: %v", err)
			return
		}
		status[id] = s
		names[name]++
	}
	rows.Close()

	type lostProduct struct {
		id  int64
		why string
	}
	var lost []lostProduct
	var latest time.Time
	recovered := true
	for _, p := range rep.Products {
		if p.Requested.Before(upAt) && p.Requested.Add(p.Latency).After(downAt) && p.Latency > row.MaxCreateLatency {
			row.MaxCreateLatency = p.Latency
		}
		if p.ID == 0 {
			problem("product %d never created: %s", p.Seq, p.Refused)
			continue
		}
		s, ok := status[p.ID]
		switch {
		case !ok:
			row.Lost++
			lost = append(lost, lostProduct{p.ID, "gone"})
		case s != "done" && s != "failed":
			row.Lost++
			lost = append(lost, lostProduct{p.ID, s})
		case s != p.Kind.Want():
			row.WrongStatus++
		}
		if p.Requested.Before(upAt) {
			if !p.Settled {
				recovered = false
			} else if p.UpdatedAt.After(latest) {
				latest = p.UpdatedAt
			}
		}
	}
	if len(lost) > 0 {
		sort.Slice(lost, func(i, j int) bool { return lost[i].id < lost[j].id })
		var ids []string
		for _, l := range lost {
			ids = append(ids, fmt.Sprintf("%d (%s)", l.id, l.why))
		}
		problem("lost products: %s", abbreviate(ids, 10))
	}
	switch {
	case !recovered:
		row.Recovery = -1
	case latest.After(upAt):
		row.Recovery = latest.Sub(upAt)
	}
	for _, n := range names {
		row.Duplicated += n - 1
	}

	// The audit: missing objects are losses, orphans duplicates; every
	// parked message must be one of the failed products'.
	var verdicts []string
	for _, res := range report.Results {
		switch {
		case res.Error != "":
			problem("audit %s could not finish: %s", res.Check, res.Error)
			verdicts = append(verdicts, res.Check+" unfinished")
			continue
		case res.Violations == 0:
			continue
		case res.Check == audit.CheckParked && res.Violations <= int64(rep.Failed):
			continue
		case res.Check == audit.CheckMissingObjects:
			row.Lost += int(res.Violations)
			problem("audit %s: %d, e.g. %s", res.Check, res.Violations, findings(res))
		case res.Check == audit.CheckOrphanObjects:
			row.Duplicated += int(res.Violations)
			problem("audit %s: %d, e.g. %s", res.Check, res.Violations, findings(res))
		default:
			problem("audit %s: %d, e.g. %s", res.Check, res.Violations, findings(res))
		}
		verdicts = append(verdicts, fmt.Sprintf("%d %s", res.Violations, res.Check))
	}
	row.Audit = "ok"
	if len(verdicts) > 0 {
		row.Audit = strings.Join(verdicts, ", ")
	}
}

func findings(res *audit.Result) string {
	var parts []string
	for _, f := range res.Findings {
		parts = append(parts, f.Subject+": "+f.Detail)
		if len(parts) == 3 {
			break
		}
	}
	return strings.Join(parts, "; ")
}

func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}

// prefixWriter writes every line with a prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	_, err := fmt.Fprintf(p.w, "%s  %s%s", time.Now().Format("15:04:05"), p.prefix, b)
	return len(b), err
}

func randomID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
