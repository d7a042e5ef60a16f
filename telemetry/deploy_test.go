package telemetry

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/relay"
)

// deployDir holds the Grafana dashboard and the Prometheus rules.
const deployDir = "../deploy"

// promtool returns the path of promtool, failing t with the command that
// installs it.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed: run `scripts/services tools` (it installs Debian's prometheus package): %v", err)
	}
	return path
}

// TestAlertRules checks the rules with promtool and runs their unit tests,
// which make every alert fire on the series that should trigger it.
func TestAlertRules(t *testing.T) {
	tool := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "alerts.yaml"},
		{"test", "rules", "alerts_test.yaml"},
	} {
		cmd := exec.Command(tool, args...)
		cmd.Dir = filepath.Join(deployDir, "prometheus")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestQueriesNameRegisteredMetrics expects every metric that a dashboard
// panel, a dashboard variable or an alert rule queries to be one that
// productd registers, so that a renamed family cannot leave an empty panel
// or a silent alert behind.
func TestQueriesNameRegisteredMetrics(t *testing.T) {
	registered := registeredFamilies(t)
	queries := dashboardQueries(t)
	queries = append(queries, alertQueries(t)...)
	if len(queries) < 20 {
		t.Fatalf("only %d queries found; the files were not read as expected", len(queries))
	}
	used := map[string]bool{}
	for _, q := range queries {
		names := metricNames(q)
		if len(names) == 0 {
			t.Errorf("query names no metric: %s", q)
		}
		for _, name := range names {
			family := familyOf(name, registered)
			if family == "" {
				t.Errorf("query names %s, which productd does not register: %s", name, q)
			}
			used[family] = true
		}
	}
	// Every productd family is on the dashboard or in an alert.
	for family := range registered {
		if strings.HasPrefix(family, "productd_") && !used[family] {
			t.Errorf("%s is registered but neither charted nor alerted on", family)
		}
	}
}

// familyOf returns the family a queried series name belongs to: itself, or
// the histogram whose _bucket, _count or _sum it is; "" for none.
func familyOf(name string, registered map[string]bool) string {
	if registered[name] {
		return name
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && registered[base] {
			return base
		}
	}
	return ""
}

// registeredFamilies sets up every component's collectors, as the roles of
// `productd all` do, and returns the names of their families.
func registeredFamilies(t *testing.T) map[string]bool {
	t.Helper()
	tel, err := New(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	// Describing needs no connection: nothing listens on port 1.
	b, err := broker.New(broker.Config{URL: "amqp://guest:guest@127.0.0.1:1/"}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tel.Relay()
	tel.Worker()
	tel.Outbox(nil)
	tel.RelayState(func() relay.Stats { return relay.Stats{} })
	tel.Broker("relay", b)
	tel.Queues(b)
	tel.Cache(func() cache.Stats { return cache.Stats{} })

	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	ch := make(chan *prometheus.Desc, 1000)
	for _, c := range tel.collectors {
		c.Describe(ch)
	}
	close(ch)
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		names[m[1]] = true
	}
	return names
}

// dashboardQueries returns the expressions of every panel and query
// variable of the dashboards in deploy/grafana.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "grafana", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboard in %s/grafana: %v", deployDir, err)
	}
	var queries []string
	for _, file := range files {
		var d struct {
			Panels []struct {
				Title   string `json:"title"`
				Type    string `json:"type"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"panels"`
			Templating struct {
				List []struct {
					Type  string `json:"type"`
					Query any    `json:"query"`
				} `json:"list"`
			} `json:"templating"`
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s is not a dashboard: %v", file, err)
		}
		for _, p := range d.Panels {
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s: panel %q has no query, or not on the dashboard's data source", file, p.Title)
			}
			for _, target := range p.Targets {
				queries = append(queries, target.Expr)
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, _ := v.Query.(map[string]any)
			s, _ := q["query"].(string)
			// label_values(metric, label) names its metric first.
			if inner, ok := strings.CutPrefix(s, "label_values("); ok {
				s = strings.SplitN(inner, ",", 2)[0]
			}
			queries = append(queries, s)
		}
	}
	return queries
}

// alertQueries returns the expressions of every rule in deploy/prometheus.
func alertQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	var queries []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			queries = append(queries, r.Expr)
		}
	}
	return queries
}

// The parts of PromQL that hold no metric name, removed before the names
// are read: strings, label matchers, ranges, Grafana's variables, and the
// label lists of by, without, on, ignoring and group_left/right.
var (
	promqlNoise = []*regexp.Regexp{
		regexp.MustCompile(`"(?:[^"\\]|\\.)*"`),
		regexp.MustCompile(`\{[^}]*\}`),
		regexp.MustCompile(`\[[^\]]*\]`),
		regexp.MustCompile(`\$\w+`),
		regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`),
	}
	promqlWord     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
		"group_left", "group_right", "inf", "nan"}
)

// metricNames returns the metric names a PromQL expression selects: its
// identifiers that are neither functions, aggregations nor keywords.
func metricNames(expr string) []string {
	for _, re := range promqlNoise {
		expr = re.ReplaceAllString(expr, " ")
	}
	var names []string
	for _, loc := range promqlWord.FindAllStringIndex(expr, -1) {
		word := expr[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("0123456789.", rune(expr[loc[0]-1])) {
			continue // a unit: the m of offset 5m
		}
		rest := strings.TrimLeft(expr[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || slices.Contains(promqlKeywords, strings.ToLower(word)) {
			continue
		}
		names = append(names, word)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (le, route) (rate(productd_x_bucket{route=~"/a|b"}[$__rate_interval]))`: {"productd_x_bucket"},
		`a / on(instance) group_left(job) b > 0.5 and c offset 5m`:                      {"a", "b", "c"},
		`count(up == 0) or vector(0)`:                                                   {"up"},
		`histogram_quantile(0.99, x)`:                                                   {"x"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %v, want %v", expr, got, want)
		}
	}
}
