// Package imageworker consumes product events from RabbitMQ and keeps each
// product's compressed images in step with its originals: for a created or
// images-changed event it fetches every original (from storage for uploads,
// over the SSRF-guarded client for URLs), compresses it, stores the result
// under a key derived from the original's content, writes the URLs back with
// one version-guarded update, and only then acknowledges the message. For a
// deleted event it removes the product's objects.
//
// Failures end in one of two ways. A transient one (storage, database or the
// image's server down, a timeout, a 5xx) sends the message to the delayed
// retry queues with a growing delay. A permanent one (not an image, too many
// pixels, corrupt, a 4xx, a refused address), or a transient one that
// outlived its retries, marks the product failed with an image_error a
// person can act on and parks the message with the reason in its
// x-productd-reason header.
//
// The product's status becomes processing when a run starts on its images,
// and Postgres counts the runs that start and never end: a file that kills
// the worker process fails its product after Config.MaxUnfinishedRuns such
// runs. Messages that were only prefetched, by a worker that shut down or
// lost its connection, are not runs; the broker's delivery count, which
// counts them too, decides nothing for product images. Done and failed are
// terminal: a duplicate or late delivery never changes them.
package imageworker

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/singleflight"

	"github.com/productd/productd"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/imageworker/internal/compress"
	"github.com/productd/productd/imageworker/internal/fetch"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/storage"
)

// Worker handles product events. Create it with New and start it with Run.
type Worker struct {
	cfg        Config
	products   productd.ProductService
	store      *storage.Store
	broker     *broker.Broker
	publisher  *broker.Publisher
	fetcher    *fetch.Client
	compressor *compress.Compressor
	log        *logrus.Entry
	// slots bounds the images in work at once, across messages.
	slots chan struct{}
	// inFlight joins deliveries of one event handled at the same time (a
	// duplicate publication), so that the event is processed and written
	// once.
	inFlight singleflight.Group
	hooks    hooks
}

// hooks let tests watch and interrupt the worker; nil fields do nothing.
type hooks struct {
	// fetched runs once an original is read, before it is compressed.
	fetched func(src string)
	// stored runs once a product's images are stored, before the result is
	// written; an error stops the processing there.
	stored func(ev productd.Event) error
	// settled runs after a delivery is settled: outcome is "acked",
	// "requeued", "renewed", "parked" or the retry queue it was sent to.
	settled func(ev productd.Event, outcome string)
}

// New returns a worker that reads events from b's work queue, writes results
// through products (productd wraps the database service in the cache, so
// that the write-back invalidates the cached product) and keeps images in
// store.
func New(cfg Config, products productd.ProductService, store *storage.Store, b *broker.Broker, log *logrus.Logger) (*Worker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	fetcher, err := fetch.New(fetch.Config{
		Allow:        cfg.FetchAllow,
		Timeout:      cfg.FetchTimeout,
		MaxBytes:     cfg.MaxDownloadBytes,
		MaxRedirects: cfg.MaxRedirects,
	})
	if err != nil {
		return nil, fmt.Errorf("imageworker: %w", err)
	}
	compressor := compress.New(compress.Config{
		MaxSide: cfg.MaxSide, Quality: cfg.Quality, MaxPixels: cfg.MaxPixels,
		MaxScans: cfg.MaxScans, Timeout: cfg.CompressTimeout, Logger: log,
	})
	return &Worker{
		cfg:        cfg,
		products:   products,
		store:      store,
		broker:     b,
		publisher:  b.NewPublisher(0),
		fetcher:    fetcher,
		compressor: compressor,
		log:        log.WithField(logging.FieldComponent, "imageworker"),
		slots:      make(chan struct{}, cfg.Concurrency),
	}, nil
}

// Run consumes the work queue until ctx ends, surviving broker outages.
// Then it takes no new message, gives the messages in hand DrainTimeout to
// finish, returns the rest to the queue, and returns ctx's error.
func (w *Worker) Run(ctx context.Context) error {
	// work outlives ctx by DrainTimeout, so that a shutdown lets images in
	// flight finish instead of throwing their work away.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(w.cfg.DrainTimeout, cancelWork) })
	defer stop()
	defer w.publisher.Close() //nolint:errcheck // nothing is left to confirm

	w.log.WithFields(logrus.Fields{
		"queue": w.broker.Topology().WorkQueue, "concurrency": w.cfg.Concurrency,
		"prefetch": w.cfg.Prefetch, "max_side": w.cfg.MaxSide,
	}).Info("imageworker: started")
	err := w.broker.Consume(ctx, broker.ConsumeOptions{
		Queue:       w.broker.Topology().WorkQueue,
		Prefetch:    w.cfg.Prefetch,
		Concurrency: w.cfg.Concurrency,
		ConsumerTag: "productd-imageworker",
	}, func(ctx context.Context, d amqp.Delivery) { w.handle(ctx, work, d) })
	w.log.Info("imageworker: stopped")
	return err
}

// Headers the worker sets on the messages it republishes.
const (
	// HeaderAttempt counts the transient failures of a message so far.
	HeaderAttempt = "x-productd-attempt"
	// HeaderReason says why a message was parked.
	HeaderReason = "x-productd-reason"
)

// handle takes one delivery to its end: ack, a delayed retry, the parking
// lot, or back to the queue at shutdown. ctx is the consumer's, done at
// shutdown; work is the worker's, done DrainTimeout later.
func (w *Worker) handle(ctx, work context.Context, d amqp.Delivery) {
	work, observed := w.cfg.Observer.Received(work, d)
	defer observed()
	log := w.log.WithContext(work).WithField("message_id", d.MessageId)
	if ctx.Err() != nil {
		// Shutting down: not started, so back to the queue at once.
		w.settle(log, productd.Event{}, "requeued", d.Nack(false, true))
		return
	}
	ev, err := decodeEvent(d.Body)
	if err != nil {
		w.park(work, log, d, ev, err.Error())
		return
	}
	log = log.WithFields(logrus.Fields{logging.FieldEventID: ev.ID, logging.FieldProductID: ev.ProductID, "event_type": ev.Type})
	attempt := attemptOf(d)

	if n := deliveryCount(d); n >= int64(w.broker.Topology().DeliveryLimit)-1 {
		if hasImages(ev) {
			// The broker counts every return of the message, those of
			// deliveries no run ever started included (prefetched by a worker
			// that shut down or lost its connection). Postgres counts the
			// runs; a fresh copy resets the broker's count before the broker
			// would park the message without telling the product.
			w.renew(work, log, d, ev)
			return
		}
		w.giveUp(work, log, d, ev, productd.Errorf(productd.EUNPROCESSABLE,
			"the message was delivered %d times without being settled; an operator must look at it", n), 0)
		return
	}

	start := time.Now()
	res, err, _ := w.inFlight.Do(ev.ID, func() (any, error) {
		mctx, cancel := context.WithTimeout(work, w.cfg.MessageTimeout)
		defer cancel()
		return w.process(mctx, log, ev)
	})
	started, _ := res.(bool)
	log = log.WithField("duration_ms", time.Since(start).Milliseconds())
	switch {
	case err == nil:
		w.settle(log, ev, "acked", d.Ack(false))
	case work.Err() != nil:
		log.WithError(err).Warn("imageworker: shutdown cut the work short; message returned to the queue")
		w.finishRun(work, log, ev, started)
		w.settle(log, ev, "requeued", d.Nack(false, true))
	case permanent(err):
		w.giveUp(work, log, d, ev, err, 0)
	default:
		w.finishRun(work, log, ev, started)
		w.retry(work, log, d, ev, attempt+1, err)
	}
}

// process does what ev asks. started reports whether a run on the
// product's images was recorded (see begin).
func (w *Worker) process(ctx context.Context, log *logrus.Entry, ev productd.Event) (started bool, err error) {
	defer recoverAs(log, &err)
	switch ev.Type {
	case productd.EventProductCreated, productd.EventProductImagesChanged:
		if err := w.removeReplaced(ctx, log, ev); err != nil {
			return false, err
		}
		if len(ev.Images) == 0 {
			return false, nil // the product's image_status is none, and stays so
		}
		if started, err = w.begin(ctx, log, ev); !started || err != nil {
			return started, err
		}
		return true, w.processImages(ctx, log, ev)
	case productd.EventProductDeleted:
		return false, w.deleteImages(ctx, log, ev)
	}
	return false, productd.Errorf(productd.EUNPROCESSABLE, "unknown event type %q", ev.Type)
}

// recoverAs turns a panic of the calling goroutine into a permanent
// failure stored in *err: an input that crashes a decoder must fail its
// product, not the process. Call it deferred.
func recoverAs(log *logrus.Entry, err *error) {
	if r := recover(); r != nil {
		log.WithField("panic", r).WithField("stack", string(debug.Stack())).Error("imageworker: panic while processing")
		*err = productd.Errorf(productd.EUNPROCESSABLE, "processing failed unexpectedly (%v)", r)
	}
}

// retry sends d to the delayed retry queue of its attempt, or gives up when
// the retries are spent. The delivery is acked only once the republished
// copy is confirmed; otherwise it goes back to the queue.
func (w *Worker) retry(ctx context.Context, log *logrus.Entry, d amqp.Delivery, ev productd.Event, attempt int, cause error) {
	topo := w.broker.Topology()
	key, ok := topo.RetryRoutingKey(attempt)
	if !ok {
		w.giveUp(ctx, log, d, ev, cause, attempt)
		return
	}
	log = log.WithFields(logrus.Fields{"attempt": attempt, "retry_queue": key})
	pub := republish(d, amqp.Table{HeaderAttempt: int64(attempt)})
	res := w.publisher.Publish(ctx, []broker.Message{{Exchange: topo.RetryExchange, RoutingKey: key, Publishing: pub}})
	if !res[0].Published() {
		log.WithError(res[0].Err).WithField("cause", cause.Error()).Warn("imageworker: could not schedule a retry; message returned to the queue")
		w.settle(log, ev, "requeued", d.Nack(false, true))
		return
	}
	log.WithError(cause).Warn("imageworker: transient failure; retry scheduled")
	w.settle(log, ev, key, d.Ack(false))
}

// giveUp records a final failure on the product, after attempts tries (0
// for a permanent failure), and parks the message with the reason. A failure
// that cannot be recorded (the database is down) is retried like any
// transient one; one that no longer matters (the product changed or is
// gone) is dropped. Images that failed only because the image storage was
// away are parked without failing the product: the sweep schedules them
// again (see package imagesweep).
func (w *Worker) giveUp(ctx context.Context, log *logrus.Entry, d amqp.Delivery, ev productd.Event, cause error, attempts int) {
	reason := reasonOf(cause, attempts)
	log = log.WithError(cause)
	if hasImages(ev) && errors.Is(cause, storage.ErrUnavailable) {
		// The images are not at fault: the storage was away for longer than
		// the retries. They stay unfinished, for the sweep to schedule again.
		w.park(ctx, log, d, ev, reason+"; the images wait for the sweep to schedule them again")
		return
	}
	if ev.Type != productd.EventProductDeleted {
		changed, err := w.products.SetImageResult(ctx, productd.ImageResult{
			ProductID: ev.ProductID, ImagesVersion: ev.ProductVersion, Status: productd.ImageStatusFailed, Error: reason,
		})
		switch {
		case err != nil && attemptOf(d) < len(w.broker.Topology().RetryDelays):
			w.retry(ctx, log, d, ev, attemptOf(d)+1, fmt.Errorf("record failure %q: %w", reason, err))
			return
		case err != nil:
			log.WithError(err).Error("imageworker: could not record the failure on the product")
		case !changed:
			log.WithField("reason", reason).Info("imageworker: failed for images the product no longer has, or that have their result already; dropped")
			w.settle(log, ev, "acked", d.Ack(false))
			return
		default:
			w.cfg.Observer.Result(productd.ImageStatusFailed, productd.ErrorCode(cause))
		}
	}
	w.park(ctx, log, d, ev, reason)
}

// park publishes d to the parking lot with reason, then acks it.
func (w *Worker) park(ctx context.Context, log *logrus.Entry, d amqp.Delivery, ev productd.Event, reason string) {
	topo := w.broker.Topology()
	log = log.WithField("reason", reason)
	pub := republish(d, amqp.Table{HeaderReason: reason, HeaderAttempt: int64(attemptOf(d))})
	res := w.publisher.Publish(ctx, []broker.Message{{Exchange: topo.DeadLetterExchange, Publishing: pub}})
	if !res[0].Published() {
		log.WithError(res[0].Err).Error("imageworker: could not park the message; returned to the queue")
		w.settle(log, ev, "requeued", d.Nack(false, true))
		return
	}
	log.Warn("imageworker: message parked")
	w.settle(log, ev, "parked", d.Ack(false))
}

// settle logs a failed ack or nack. The broker redelivers such a message,
// and processing it again is harmless.
func (w *Worker) settle(log *logrus.Entry, ev productd.Event, outcome string, err error) {
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		log.WithError(err).Warn("imageworker: could not settle the delivery; it will be redelivered")
	}
	w.cfg.Observer.Settled(settledOutcome(outcome))
	if w.hooks.settled != nil {
		w.hooks.settled(ev, outcome)
	}
}
