package imageworker

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/imagetest"
	"github.com/productd/productd/internal/s3test"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/uploads"
)

// Deleting a product that lists another product's URLs, the original it
// uploaded and its compressed image, removes only its own objects: the
// other product's still serve.
func TestDeleteRemovesOnlyOwnedObjects(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(testConfig(), nil, hooks{})
	ctx := context.Background()
	up := h.upload("image/png", imagetest.Read(t, "alpha.png"))
	a, evA := h.createOwning([]productd.Upload{up}, h.url("photo.jpg"))
	h.publish(evA, nil)
	a = h.waitStatus(a.ID, productd.ImageStatusDone)

	copied := append(slices.Clone(a.Images), a.CompressedImages...)
	b, evB := h.create(copied...)
	h.publish(evB, nil)
	h.waitStatus(b.ID, productd.ImageStatusDone)
	if err := h.products.DeleteProduct(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	del := h.lastEvent(b.ID)
	h.publish(del, nil)
	if out := h.outcome(del.ID); out != "acked" {
		t.Fatalf("delete event %v", out)
	}
	if keys := h.keys(b.ID); len(keys) != 0 {
		t.Errorf("the deleted product's objects are left: %v", keys)
	}
	for _, u := range copied {
		if code := s3test.Status(t, u); code != http.StatusOK {
			t.Errorf("GET %s of the product that was not deleted: %d", u, code)
		}
	}

	// Deleting the owner removes its upload and compressed images.
	if err := h.products.DeleteProduct(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	del = h.lastEvent(a.ID)
	h.publish(del, nil)
	if out := h.outcome(del.ID); out != "acked" {
		t.Fatalf("delete event %v", out)
	}
	for _, u := range append([]string{up.URL}, a.CompressedImages...) {
		if code := s3test.Status(t, u); code == http.StatusOK {
			t.Errorf("GET %s after its owner was deleted: %d", u, code)
		}
	}
}

// New images remove what they replace once the change commits: the upload
// the product no longer lists and the compressed images of the old images.
// An upload it keeps listing stays.
func TestImagesChangeRemovesReplaced(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(testConfig(), nil, hooks{})
	ctx := context.Background()
	kept := h.upload("image/png", imagetest.Read(t, "alpha.png"))
	dropped := h.upload("image/webp", imagetest.Read(t, "photo.webp"))
	p, ev := h.createOwning([]productd.Upload{kept, dropped})
	h.publish(ev, nil)
	old := h.waitStatus(p.ID, productd.ImageStatusDone)

	added := h.upload("image/jpeg", imagetest.Read(t, "photo.jpg"))
	images := []string{kept.URL, added.URL}
	if _, err := h.products.UpdateProduct(ctx, p.ID, productd.ProductUpdate{Images: &images, Uploads: []productd.Upload{added}}); err != nil {
		t.Fatal(err)
	}
	changed := h.lastEvent(p.ID)
	if !slices.Equal(changed.RemoveObjects, []string{dropped.Key}) {
		t.Fatalf("the change asks to remove %v, want the dropped upload %s", changed.RemoveObjects, dropped.Key)
	}
	h.publish(changed, nil)
	now := h.waitStatus(p.ID, productd.ImageStatusDone)
	for _, u := range append([]string{dropped.URL}, old.CompressedImages...) {
		if code := s3test.Status(t, u); code == http.StatusOK {
			t.Errorf("GET %s, replaced: %d", u, code)
		}
	}
	for _, u := range append([]string{kept.URL, added.URL}, now.CompressedImages...) {
		if code := s3test.Status(t, u); code != http.StatusOK {
			t.Errorf("GET %s, current: %d", u, code)
		}
	}
	if keys := h.keys(p.ID); len(keys) != 2 {
		t.Errorf("objects %v, want the two current compressed images", keys)
	}
}

// upload stores data as an upload that no product owns yet, as the API
// does with a file.
func (h *harness) upload(contentType string, data []byte) productd.Upload {
	h.t.Helper()
	u, err := uploads.New(uploads.Config{}, h.pool, h.store, logging.Discard()).
		PutOriginal(context.Background(), contentType, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

// createOwning creates a product whose images are urls, then the uploads,
// which it owns, and returns it with its created event.
func (h *harness) createOwning(owned []productd.Upload, urls ...string) (*productd.Product, productd.Event) {
	h.t.Helper()
	images := slices.Clone(urls)
	for _, u := range owned {
		images = append(images, u.URL)
	}
	c, err := h.products.CreateProduct(context.Background(), &productd.Product{UserID: 1, Name: "Mug", Price: 1000, Images: images, Uploads: owned}, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return c.Product, h.lastEvent(c.Product.ID)
}
