package imageworker

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
	"github.com/productd/productd/storage"
)

// imageError says which of a product's images failed.
type imageError struct {
	index, total int
	url          string
	err          error
}

func (e *imageError) Error() string {
	u := e.url
	if len(u) > 120 {
		u = u[:117] + "..."
	}
	return fmt.Sprintf("image %d of %d (%s): %s", e.index+1, e.total, u, productd.ErrorMessage(e.err))
}

func (e *imageError) Unwrap() error { return e.err }

// processImages compresses every image of ev and writes the result with one
// version-guarded update, once begin has started a run on them. Images run in parallel within the worker's
// concurrency; the first permanent failure stops the others, since the
// product cannot end done.
func (w *Worker) processImages(ctx context.Context, log *logrus.Entry, ev productd.Event) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	urls := make([]string, len(ev.Images))
	errs := make([]error, len(ev.Images))
	var wg sync.WaitGroup
	for i, src := range ev.Images {
		wg.Go(func() {
			u, err := w.processImage(ctx, log, ev.ProductID, ev.ProductVersion, i, src)
			if err != nil {
				errs[i] = &imageError{index: i, total: len(ev.Images), url: src, err: err}
				if permanent(err) {
					cancel()
				}
			}
			urls[i] = u
		})
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		return err
	}
	if w.hooks.stored != nil {
		if err := w.hooks.stored(ev); err != nil {
			return err
		}
	}

	start := time.Now()
	changed, err := w.products.SetImageResult(ctx, productd.ImageResult{
		ProductID: ev.ProductID, ImagesVersion: ev.ProductVersion, Status: productd.ImageStatusDone, CompressedImages: urls,
	})
	w.cfg.Observer.Step(ctx, StepUpdate, start, time.Since(start), err)
	if err != nil {
		return fmt.Errorf("write image result: %w", err)
	}
	if !changed {
		return w.discardStale(ctx, log, ev, urls)
	}
	w.cfg.Observer.Result(productd.ImageStatusDone, "")
	log.WithField("images", len(urls)).Info("imageworker: images done")
	return nil
}

// firstError returns the first permanent error of errs, or else the first
// error: a permanent failure decides the product's fate even while another
// image's failure might pass.
func firstError(errs []error) error {
	var first error
	for _, err := range errs {
		if err != nil && permanent(err) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// processImage fetches, compresses and stores the index-th image of a
// product's images of imagesVersion and returns the compressed image's URL. It runs on a goroutine of
// its own, so it recovers its own panics.
func (w *Worker) processImage(ctx context.Context, log *logrus.Entry, productID, imagesVersion int64, index int, src string) (url string, err error) {
	defer recoverAs(log, &err)
	select {
	case w.slots <- struct{}{}:
		defer func() { <-w.slots }()
	case <-ctx.Done():
		return "", ctx.Err()
	}
	obs := w.cfg.Observer
	start := time.Now()
	original, err := w.original(ctx, src)
	obs.Step(ctx, StepFetch, start, time.Since(start), err)
	if err != nil {
		return "", err
	}
	if w.hooks.fetched != nil {
		w.hooks.fetched(src)
	}
	start = time.Now()
	res, err := w.compressor.Compress(ctx, original)
	if err != nil {
		// The steps are timed only when all of them ran; most failures are
		// the decoder's.
		obs.Step(ctx, StepDecode, start, time.Since(start), err)
		return "", err
	}
	obs.Step(ctx, StepDecode, res.Decode.Start, res.Decode.Took, nil)
	obs.Step(ctx, StepResize, res.Resize.Start, res.Resize.Took, nil)
	obs.Step(ctx, StepEncode, res.Encode.Start, res.Encode.Took, nil)
	sum := sha256.Sum256(original)
	key := storage.CompressedKey(productID, imagesVersion, index, sum[:], res.Format.Ext())
	start = time.Now()
	url, err = w.store.Put(ctx, key, res.Data, res.Format.ContentType())
	obs.Step(ctx, StepUpload, start, time.Since(start), err)
	return url, err
}

// original returns the bytes of an original: from storage when it is one
// of our uploads, over HTTP otherwise.
func (w *Worker) original(ctx context.Context, src string) ([]byte, error) {
	if key, ok := w.store.KeyFromURL(src); ok {
		return w.store.Get(ctx, key, w.cfg.MaxDownloadBytes)
	}
	return w.fetcher.Get(ctx, src)
}
