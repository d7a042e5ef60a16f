package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/productd/productd/loadgen"
)

// runLoad runs `productd load [flags]`: it creates products through the API
// at --url and prints what it saw. It exits non-zero when a product was
// refused, never ended, or ended otherwise than it must.
func runLoad(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("productd load", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var cfg loadgen.Config
	fs.StringVar(&cfg.BaseURL, "url", "http://127.0.0.1:8080", "the API's address")
	fs.Float64Var(&cfg.Rate, "rate", 20, "products a second to create; 0 for as fast as -concurrency allows")
	fs.IntVar(&cfg.Count, "count", 0, "products to create (0: until -duration or Ctrl-C)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to create (0: until -count or Ctrl-C)")
	fs.IntVar(&cfg.Concurrency, "concurrency", loadgen.DefaultConcurrency, "create requests in flight at most")
	fs.Float64Var(&cfg.UploadShare, "uploads", loadgen.DefaultUploadShare, "share of products created with an uploaded image (negative: none)")
	fs.Float64Var(&cfg.InvalidShare, "invalid", loadgen.DefaultInvalidShare, "share of products with an image that must fail (negative: none)")
	fs.IntVar(&cfg.MaxImages, "max-images", loadgen.DefaultMaxImages, "most images of a valid product")
	fs.DurationVar(&cfg.FollowFor, "follow-for", loadgen.DefaultFollowFor, "how long to wait for products to end after the last create")
	imageAddr := fs.String("image-addr", "127.0.0.1:0", "where the image server listens; the workers must be allowed to fetch from it (IMAGE_FETCH_ALLOW=host:port)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(errOut, "productd load: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	images, err := loadgen.NewImageServer(*imageAddr)
	if err != nil {
		return err
	}
	defer images.Close()
	cfg.Images = images
	if !*quiet {
		cfg.Progress, cfg.ProgressInterval = errOut, time.Second
	}
	fmt.Fprintf(errOut, "productd load: images on http://%s (the workers need IMAGE_FETCH_ALLOW=%[1]s)\n", images.Addr())
	report, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	return printReport(out, report, *asJSON, errLoadFailed)
}
