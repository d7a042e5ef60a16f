package main

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/productd/productd/internal/s3test"
)

// TestDeletingACopyKeepsTheOriginal drives `productd all` through HTTP: A
// uploads an image; B is created with A's public URLs (its original and its
// compressed image, as GET /products/A shows them); deleting B removes B's
// own compressed image and nothing of A's, whose URLs still serve. Then A
// replaces its upload with a new one: the replaced original and compressed
// image stop serving once the change is processed.
func TestDeletingACopyKeepsTheOriginal(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	photo := readFixture(t, "photo.jpg")
	logs := d.start(t, "all")
	d.awaitReady(t, logs)
	// The image pipeline's chores run beside the relay's.
	d.awaitChores(t, logs, "images_sweep", "uploads_sweep")

	a := d.create(t, multipartRequest(t, d.url("/products"), map[string]string{
		"user_id": "1", "product_name": "original", "product_price": "10",
	}, photo))
	a = d.awaitImages(t, logs, a.ID)
	aURLs := append(slices.Clone(a.Images), a.CompressedImages...)

	b := d.create(t, jsonRequest(t, http.MethodPost, d.url("/products"), map[string]any{
		"user_id": 2, "product_name": "copy", "product_price": 10, "product_images": aURLs,
	}))
	b = d.awaitImages(t, logs, b.ID)
	resp := d.do(t, mustRequest(t, http.MethodDelete, d.url(fmt.Sprint("/products/", b.ID)), nil))
	expectStatus(t, resp, http.StatusNoContent)
	await(t, logs, "the copy's compressed images to be removed", func() (bool, string) {
		code := s3test.Status(t, b.CompressedImages[0])
		return code != http.StatusOK, fmt.Sprintf("GET %s: %d", b.CompressedImages[0], code)
	})
	for _, u := range aURLs {
		if code := s3test.Status(t, u); code != http.StatusOK {
			t.Errorf("GET %s of the product that was not deleted: %d", u, code)
		}
	}

	resp = d.do(t, multipartPatch(t, d.url(fmt.Sprint("/products/", a.ID)), readFixture(t, "photo-444.jpg")))
	expectStatus(t, resp, http.StatusOK)
	changed := d.awaitImages(t, logs, a.ID)
	await(t, logs, "the replaced images to be removed", func() (bool, string) {
		for _, u := range aURLs {
			if code := s3test.Status(t, u); code == http.StatusOK {
				return false, fmt.Sprintf("GET %s: %d", u, code)
			}
		}
		return true, ""
	})
	for _, u := range append(slices.Clone(changed.Images), changed.CompressedImages...) {
		if code := s3test.Status(t, u); code != http.StatusOK {
			t.Errorf("GET %s of the new images: %d", u, code)
		}
	}
}

// multipartPatch is a PATCH whose one image file replaces the images.
func multipartPatch(t *testing.T, url string, image []byte) *http.Request {
	t.Helper()
	req := multipartRequest(t, url, map[string]string{}, image)
	req.Method = http.MethodPatch
	return req
}
