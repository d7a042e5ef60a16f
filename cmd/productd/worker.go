package main

import (
	"context"
	"fmt"
	"time"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/config"
	"github.com/productd/productd/imageworker"
	"github.com/productd/productd/internal/backoff"
	"github.com/productd/productd/storage"
	"github.com/productd/productd/uploads"
)

// runWorker compresses product images until ctx is cancelled, then lets the
// images in flight finish within six tenths of the shutdown timeout and
// returns the rest to the queue. Closing the consumer's channel, the
// publisher's and the connection wait a tenth each at most, so that the
// role stops within the shutdown timeout whatever the broker does.
func runWorker(ctx context.Context, a *app) error {
	store, err := storage.New(storageConfig(a.cfg))
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	b, err := broker.New(broker.Config{
		URL: a.cfg.AMQPURL, ConnectionName: "productd worker", CloseTimeout: a.cfg.ShutdownTimeout / 10,
	}, a.log)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	defer b.Close()
	a.need("rabbitmq", brokerCheck(b))
	a.tel.Broker("worker", b)
	a.tel.Queues(b)
	w, err := imageworker.New(imageworker.Config{
		FetchAllow:   a.cfg.ImageFetchAllow,
		DrainTimeout: a.cfg.ShutdownTimeout * 6 / 10,
		Observer:     a.tel.Worker(),
	}, a.products, store, b, a.log)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// setupStorage connects the object storage that keeps uploaded originals
// and sets a.originals, which records them in Postgres; with ready, the
// bucket is a readiness check and is set up (the api and worker roles
// store objects), whereas a relay only deletes the uploads no product owns
// (their sweep is one of its chores). A MinIO that does not answer at start
// is no reason to stop: the process is unready and uploads fail with 503
// until it answers, and the bucket and its read policy are set up in the
// background as soon as it does.
func setupStorage(ctx context.Context, a *app, ready bool) error {
	store, err := storage.New(storageConfig(a.cfg))
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	// The sweep looks at least as often as its bound, so that a short
	// bound (the chaos suite's) is kept.
	a.originals = uploads.New(uploads.Config{
		AbandonAfter:  a.cfg.UploadSweepAfter,
		SweepInterval: min(uploads.DefaultSweepInterval, a.cfg.UploadSweepAfter),
	}, a.pool, store, a.log)
	if ready {
		a.need("storage", store.Check)
		go ensureBucket(ctx, a, store)
	}
	return nil
}

// ensureBucket creates the bucket and its policy, retrying with a growing
// wait until it succeeds or ctx ends.
func ensureBucket(ctx context.Context, a *app, store *storage.Store) {
	log := a.log.WithField("bucket", store.Bucket())
	for attempt := 1; ; attempt++ {
		err := store.EnsureBucket(ctx)
		if err == nil {
			log.Info("storage: bucket ready")
			return
		}
		wait := backoff.Exponential(attempt, time.Second, time.Minute)
		log.WithError(err).WithField("retry_in", wait.String()).Warn("storage: bucket not ready; uploads fail until it is")
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// storageConfig is the object storage's part of the settings.
func storageConfig(c *config.Config) storage.Config {
	return storage.Config{
		Endpoint:  c.S3Endpoint,
		UseSSL:    c.S3UseSSL,
		AccessKey: c.S3AccessKey,
		SecretKey: c.S3SecretKey,
		Bucket:    c.S3Bucket,
		PublicURL: c.S3PublicURL,
	}
}
