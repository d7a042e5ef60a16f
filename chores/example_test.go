package chores_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/riverqueue/river"

	"github.com/productd/productd/chores"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
)

// ReportArgs is a chore: its Kind names it among every process's chores.
type ReportArgs struct{}

func (ReportArgs) Kind() string { return "example_report" }

// The package that owns the data registers its chore, here every hour, and
// the process runs the scheduler; a chore also runs as soon as the
// scheduler starts, so that a new leader leaves no gap.
func ExampleRegister() {
	ctx := context.Background()
	pool := dbtest.NewPool(&ex) // a program opens its pool with db.Open
	s := chores.New(pool, chores.Config{}, logging.Discard())

	ran := make(chan struct{}, 1)
	report := func(ctx context.Context, _ *river.Job[ReportArgs]) error {
		select {
		case ran <- struct{}{}:
		default:
		}
		return nil
	}
	if err := chores.Register(s, ReportArgs{}, river.WorkFunc(report), time.Hour); err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Kinds())
	fmt.Println(chores.Register(s, ReportArgs{}, river.WorkFunc(report), time.Hour))

	if err := s.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer s.Stop(ctx)
	select {
	case <-ran:
		fmt.Println("ran on start")
	case <-time.After(time.Minute):
		fmt.Println("did not run")
	}
	// Output:
	// [example_report]
	// register chore example_report: already registered
	// ran on start
}
