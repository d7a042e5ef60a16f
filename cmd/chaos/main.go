// Command chaos runs the chaos suite (package chaos): productd as separate
// processes under load, one fault at a time, against private services it
// starts and removes itself. It prints the table of scenarios and exits 1
// when one of them lost, duplicated or mis-statused a product.
//
// Usage:
//
//	chaos -productd bin/productd [-short] [-scenarios a,b] [-products N] [-rate R] [-outage D] [-logs DIR] [-json FILE]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/productd/productd/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var cfg chaos.Config
	fs.StringVar(&cfg.Binary, "productd", "bin/productd", "the productd binary to run")
	fs.BoolVar(&cfg.Short, "short", false, "the short suite: "+strings.Join(chaos.ShortScenarios, " and ")+", fewer products, shorter outages")
	scenarios := fs.String("scenarios", "", "comma-separated scenarios to run (default: all, or the short ones with -short)")
	list := fs.Bool("list", false, "list the scenarios and exit")
	fs.IntVar(&cfg.Products, "products", 0, fmt.Sprintf("products per scenario (default %d, short %d)", chaos.DefaultProducts, chaos.DefaultShortProducts))
	fs.Float64Var(&cfg.Rate, "rate", 0, fmt.Sprintf("products created a second (default %d)", chaos.DefaultRate))
	fs.DurationVar(&cfg.Outage, "outage", 0, fmt.Sprintf("how long a service stays away (default %s, short %s)", chaos.DefaultOutage, chaos.DefaultShortOutage))
	fs.DurationVar(&cfg.SettleFor, "settle-for", 0, fmt.Sprintf("how long to wait for the system to settle after the load (default %s)", chaos.DefaultSettleFor))
	fs.StringVar(&cfg.LogDir, "logs", "", "directory that receives every scenario's process logs")
	fs.StringVar(&cfg.Root, "scratch", "", "where the scratch directory goes (default: the system's temporary directory)")
	jsonOut := fs.String("json", "", "also write the table as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *list {
		for _, s := range chaos.Scenarios() {
			fmt.Fprintf(out, "%-22s %s\n", s.Name, s.Title)
		}
		return 0
	}
	if *scenarios != "" {
		cfg.Scenarios = strings.Split(*scenarios, ",")
	}
	cfg.Out = out
	cfg.Log = logrus.New()
	cfg.Log.SetOutput(errOut)
	cfg.Log.SetFormatter(&logrus.TextFormatter{})

	table, err := chaos.Run(ctx, cfg)
	return report(table, err, *jsonOut, out, errOut)
}

// report prints what a run found: the table, if any scenario ran, and its
// JSON to jsonOut when set, then the verdict; it returns the exit status.
// A run that stopped with an error still shows the scenarios it finished.
func report(table *chaos.Table, runErr error, jsonOut string, out, errOut io.Writer) int {
	if table != nil && len(table.Rows) > 0 {
		fmt.Fprintln(out)
		if err := table.WriteMarkdown(out); err != nil {
			fmt.Fprintf(errOut, "chaos: %v\n", err)
		}
		fmt.Fprintf(out, "\n%d scenarios in %s\n", len(table.Rows), table.Duration.Round(time.Second))
		if jsonOut != "" {
			if err := writeJSON(jsonOut, table); err != nil {
				fmt.Fprintf(errOut, "chaos: write the table as JSON: %v\n", err)
			}
		}
	}
	if runErr != nil {
		fmt.Fprintf(errOut, "chaos: %v\n", runErr)
		return 1
	}
	if !table.Pass() {
		fmt.Fprintln(errOut, "chaos: FAILED")
		return 1
	}
	fmt.Fprintln(out, "chaos: every scenario passed")
	return 0
}

func writeJSON(path string, table *chaos.Table) error {
	b, err := json.MarshalIndent(table, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
