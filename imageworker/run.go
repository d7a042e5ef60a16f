package imageworker

import (
	"context"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
	"github.com/productd/productd/broker"
)

// finishTimeout bounds the write that uncounts a run; it runs when the
// worker's own context may be done already.
const finishTimeout = 5 * time.Second

// hasImages reports whether ev asks for a product's images to be processed.
func hasImages(ev productd.Event) bool {
	return ev.Type == productd.EventProductCreated || ev.Type == productd.EventProductImagesChanged
}

// begin decides whether ev's images need a run and, if so, records one:
// the product's status becomes processing. Images that changed since, that
// already have their result (a duplicate or late delivery), or whose
// product is gone need nothing. Images on which earlier runs started and
// never ended, MaxUnfinishedRuns times, are given up: a permanent failure,
// so that a file that kills the worker cannot do so for ever.
func (w *Worker) begin(ctx context.Context, log *logrus.Entry, ev productd.Event) (started bool, err error) {
	p, err := w.products.FindProductByID(ctx, ev.ProductID)
	switch {
	case productd.ErrorCode(err) == productd.ENOTFOUND:
		log.Info("imageworker: the product is gone; nothing to do")
		return false, nil
	case err != nil:
		return false, err
	case p.ImagesVersion > ev.ProductVersion:
		log.WithField("images_version", p.ImagesVersion).Info("imageworker: stale event, the images have changed since; skipped")
		return false, nil
	case p.ImagesVersion == ev.ProductVersion && (p.ImageStatus == productd.ImageStatusDone || p.ImageStatus == productd.ImageStatusFailed):
		log.WithField("image_status", p.ImageStatus).Info("imageworker: the images have their result already; duplicate delivery acknowledged")
		return false, nil
	}
	run, err := w.products.StartImageRun(ctx, ev.ProductID, ev.ProductVersion)
	if err != nil {
		return false, fmt.Errorf("start image run: %w", err)
	}
	if !run.Started {
		log.Info("imageworker: the images changed or got their result meanwhile; skipped")
		return false, nil
	}
	if run.Unfinished >= w.cfg.MaxUnfinishedRuns {
		return true, productd.Errorf(productd.EUNPROCESSABLE,
			"runs on these images stopped without an end %d %s (a worker died holding them); an operator must look at them",
			run.Unfinished, plural(run.Unfinished, "time", "times"))
	}
	return true, nil
}

// finishRun uncounts a started run that ends without a result. A failure
// only makes the run look unfinished, which costs one of
// MaxUnfinishedRuns.
func (w *Worker) finishRun(ctx context.Context, log *logrus.Entry, ev productd.Event, started bool) {
	if !started {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if err := w.products.FinishImageRun(ctx, ev.ProductID, ev.ProductVersion); err != nil {
		log.WithError(err).Warn("imageworker: could not record the end of the run")
	}
}

// renew puts a fresh copy of d at the back of the work queue, through the
// default exchange so that no other queue bound to the events gets it, and
// acks d once the copy is confirmed.
func (w *Worker) renew(ctx context.Context, log *logrus.Entry, d amqp.Delivery, ev productd.Event) {
	log = log.WithField("deliveries", deliveryCount(d))
	res := w.publisher.Publish(ctx, []broker.Message{{RoutingKey: w.broker.Topology().WorkQueue, Publishing: republish(d, nil)}})
	if !res[0].Published() {
		log.WithError(res[0].Err).Warn("imageworker: could not renew the message; returned to the queue")
		w.settle(log, ev, "requeued", d.Nack(false, true))
		return
	}
	log.Info("imageworker: message renewed; its redeliveries were not runs")
	w.settle(log, ev, "renewed", d.Ack(false))
}

// plural returns one or many as n asks.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
