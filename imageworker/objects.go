package imageworker

import (
	"context"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
)

// removeReplaced removes what an images-changed event leaves behind: the
// uploads the change released (ev.RemoveObjects; no product owns them any
// more) and the product's compressed images of earlier images versions,
// which nothing refers to since the change reset them. Compressed keys carry
// their images version, so nothing of this version or a later one is
// touched, and the removal is right even when the event itself is stale.
func (w *Worker) removeReplaced(ctx context.Context, log *logrus.Entry, ev productd.Event) error {
	if ev.Type != productd.EventProductImagesChanged {
		return nil
	}
	if err := w.store.Delete(ctx, ev.RemoveObjects...); err != nil {
		return fmt.Errorf("remove released uploads of product %d: %w", ev.ProductID, err)
	}
	n, err := w.store.DeleteOlderVersions(ctx, ev.ProductID, ev.ProductVersion)
	if err != nil {
		return fmt.Errorf("remove replaced images of product %d: %w", ev.ProductID, err)
	}
	if n > 0 || len(ev.RemoveObjects) > 0 {
		log.WithFields(logrus.Fields{"uploads": len(ev.RemoveObjects), "compressed": n}).Info("imageworker: replaced images removed")
	}
	return nil
}

// discardStale handles a result the database refused. When the product is
// gone or has newer images, the objects just stored are nobody's: their keys
// carry this event's images version, which no other images share, so they
// go. Otherwise (a duplicate delivery found the images done or failed
// already) they may be the ones the product shows, and stay.
func (w *Worker) discardStale(ctx context.Context, log *logrus.Entry, ev productd.Event, urls []string) error {
	p, err := w.products.FindProductByID(ctx, ev.ProductID)
	switch {
	case productd.ErrorCode(err) == productd.ENOTFOUND:
		log.Info("imageworker: the product was deleted while its images were processed; removing them")
	case err != nil:
		return err
	case p.ImagesVersion > ev.ProductVersion:
		log.Info("imageworker: the images changed while they were processed; result dropped and its objects removed")
	default:
		log.Info("imageworker: the images have their result already; duplicate result dropped")
		return nil
	}
	var keys []string
	for _, u := range urls {
		if k, ok := w.store.KeyFromURL(u); ok {
			keys = append(keys, k)
		}
	}
	return w.store.Delete(ctx, keys...)
}

// deleteImages removes a deleted product's objects: everything under its
// own prefix, and the uploads it owned (ev.RemoveObjects). Nothing is
// inferred from its image URLs: those may be another product's.
func (w *Worker) deleteImages(ctx context.Context, log *logrus.Entry, ev productd.Event) error {
	if err := w.store.DeleteProduct(ctx, ev.ProductID, ev.RemoveObjects...); err != nil {
		return fmt.Errorf("delete images of product %d: %w", ev.ProductID, err)
	}
	log.Info("imageworker: images of the deleted product removed")
	return nil
}
