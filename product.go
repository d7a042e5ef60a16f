package productd

import (
	"context"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what a client controls.
const (
	MaxImages            = 10
	MaxNameLength        = 200
	MaxDescriptionLength = 5000
	MaxURLLength         = 2048
	DefaultListLimit     = 50
	MaxListLimit         = 200
)

// ImageStatus says where a product's images are in their processing.
type ImageStatus string

// The image statuses a product moves through. A product without images is
// ImageStatusNone; every change of images makes it ImageStatusPending, the
// image worker's first run on them ImageStatusProcessing, and its result
// ImageStatusDone or ImageStatusFailed, which are terminal for those images.
const (
	ImageStatusNone       ImageStatus = "none"
	ImageStatusPending    ImageStatus = "pending"
	ImageStatusProcessing ImageStatus = "processing"
	ImageStatusDone       ImageStatus = "done"
	ImageStatusFailed     ImageStatus = "failed"
)

// Product is an entry of the catalogue. The JSON names are those of the seed
// service that productd replaces, so its clients keep working unchanged.
type Product struct {
	ID          int64  `json:"id"`
	UserID      int64  `json:"user_id"`
	Name        string `json:"product_name"`
	Description string `json:"product_description"`
	Price       Price  `json:"product_price"`

	// Images are the originals' URLs; CompressedImages[i] is the compressed
	// form of Images[i] once ImageStatus is ImageStatusDone.
	Images           []string    `json:"product_images"`
	CompressedImages []string    `json:"compressed_product_images"`
	ImageStatus      ImageStatus `json:"image_status"`
	ImageError       string      `json:"image_error,omitempty"`

	// Uploads are the entries of Images that were uploaded with the request
	// that creates the product: the product owns their stored objects, which
	// go when it does or when a change of images drops them. Set only on
	// the way in; never read back.
	Uploads []Upload `json:"-"`

	// Version grows by one with every change of the row; caches order
	// values by it. ImagesVersion is the Version at which Images last
	// changed: events carry it, and the image worker's result is written
	// only while it still matches, so a stale event never overwrites a newer
	// state.
	Version       int64     `json:"version"`
	ImagesVersion int64     `json:"-"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Validate checks the fields a client sets, returning an EUNPROCESSABLE error
// that names the first field that breaks a rule.
func (p *Product) Validate() error {
	if p.UserID <= 0 {
		return Errorf(EUNPROCESSABLE, "user_id is required and must be positive")
	}
	if err := validateName(p.Name); err != nil {
		return err
	}
	if err := validateDescription(p.Description); err != nil {
		return err
	}
	if err := validatePrice(p.Price); err != nil {
		return err
	}
	return ValidateImageURLs(p.Images)
}

func validateName(name string) error {
	if strings.TrimSpace(name) == "" {
		return Errorf(EUNPROCESSABLE, "product_name is required")
	} else if utf8.RuneCountInString(name) > MaxNameLength {
		return Errorf(EUNPROCESSABLE, "product_name is longer than %d characters", MaxNameLength)
	} else if !utf8.ValidString(name) {
		return Errorf(EUNPROCESSABLE, "product_name is not valid UTF-8")
	}
	return nil
}

func validateDescription(desc string) error {
	if utf8.RuneCountInString(desc) > MaxDescriptionLength {
		return Errorf(EUNPROCESSABLE, "product_description is longer than %d characters", MaxDescriptionLength)
	} else if !utf8.ValidString(desc) {
		return Errorf(EUNPROCESSABLE, "product_description is not valid UTF-8")
	}
	return nil
}

func validatePrice(p Price) error {
	if p < 0 {
		return Errorf(EUNPROCESSABLE, "product_price must not be negative")
	} else if p > MaxPrice {
		return Errorf(EUNPROCESSABLE, "product_price is over the maximum of %s", MaxPrice)
	}
	return nil
}

// ValidateImageURLs checks that there are at most MaxImages URLs and that each
// is an absolute http or https URL with a host.
func ValidateImageURLs(urls []string) error {
	if len(urls) > MaxImages {
		return Errorf(EUNPROCESSABLE, "product_images has %d entries; at most %d are allowed", len(urls), MaxImages)
	}
	for i, raw := range urls {
		if len(raw) > MaxURLLength {
			return Errorf(EUNPROCESSABLE, "product_images[%d] is longer than %d characters", i, MaxURLLength)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return Errorf(EUNPROCESSABLE, "product_images[%d] must be an absolute http or https URL without credentials", i)
		}
	}
	return nil
}

// ProductUpdate holds the fields a PATCH changes; nil fields stay as they are.
type ProductUpdate struct {
	Name        *string
	Description *string
	Price       *Price
	Images      *[]string
	// Uploads are the entries of Images uploaded with this request, which
	// the product comes to own, as in Product.Uploads.
	Uploads []Upload
}

// Upload is an image file stored for a product by the request that creates
// or changes it.
type Upload struct {
	// Key names the stored object.
	Key string
	// URL is its public URL, the entry of the product's images.
	URL string
}

// Validate checks the fields that are set by the same rules as Product.Validate.
func (u *ProductUpdate) Validate() error {
	if u.Name != nil {
		if err := validateName(*u.Name); err != nil {
			return err
		}
	}
	if u.Description != nil {
		if err := validateDescription(*u.Description); err != nil {
			return err
		}
	}
	if u.Price != nil {
		if err := validatePrice(*u.Price); err != nil {
			return err
		}
	}
	if u.Images != nil {
		return ValidateImageURLs(*u.Images)
	}
	return nil
}

// Empty reports whether the update changes nothing.
func (u *ProductUpdate) Empty() bool {
	return u.Name == nil && u.Description == nil && u.Price == nil && u.Images == nil
}

// ProductFilter selects a page of products. Zero fields do not filter.
// Products come in ascending id order; AfterID is the keyset cursor: the id of
// the last product of the previous page.
type ProductFilter struct {
	UserID   *int64
	MinPrice *Price
	MaxPrice *Price
	// Name matches product_name without regard to case: anywhere in it
	// when Name has three letters or digits in a row (see
	// NameMatchesAnywhere), otherwise at its start. A shorter term has no
	// trigram to look up in an index, so it could only be matched anywhere
	// by reading every product.
	Name    string
	AfterID int64
	Limit   int
}

// NameMatchesAnywhere reports whether the name filter term matches anywhere
// in a product's name, rather than at its start: whether it has three
// letters or digits in a row.
func NameMatchesAnywhere(term string) bool {
	run := 0
	for _, r := range term {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			run = 0
			continue
		}
		if run++; run == 3 {
			return true
		}
	}
	return false
}

// Validate checks the filter's ranges and fills in the default limit.
func (f *ProductFilter) Validate() error {
	if f.MinPrice != nil && f.MaxPrice != nil && *f.MinPrice > *f.MaxPrice {
		return Errorf(EINVALID, "min_price is greater than max_price")
	}
	// MaxListLimit bounds what clients ask for; it is enforced where their
	// requests are parsed, so that a caller may ask for one row more to learn
	// whether a next page exists.
	if f.Limit == 0 {
		f.Limit = DefaultListLimit
	} else if f.Limit < 0 {
		return Errorf(EINVALID, "limit must be positive")
	}
	if utf8.RuneCountInString(f.Name) > MaxNameLength {
		return Errorf(EINVALID, "product_name filter is longer than %d characters", MaxNameLength)
	}
	return nil
}

// IdempotencyKey identifies a create request that a client may retry. The
// first request under a key creates the product; a retry with the same
// RequestHash gets the first response back; another hash is refused.
type IdempotencyKey struct {
	Key         string
	RequestHash []byte
}

// Created is the outcome of ProductService.CreateProduct.
type Created struct {
	// Product is the created product, or nil for a replayed request.
	Product *Product
	// ProductID is the id of the product, set for replays too.
	ProductID int64
	// Body is the JSON of the product as first created: a replay returns
	// exactly the bytes of the first response.
	Body []byte
	// Replayed is true when an earlier request with the same idempotency key
	// created the product.
	Replayed bool
}

// ImageResult is what the image worker writes back for the images a product
// had at ImagesVersion. Done and failed are terminal: once either is
// recorded for an ImagesVersion, no later result for that version changes
// it; only new images (or re-scheduling them) start a new version.
type ImageResult struct {
	ProductID        int64
	ImagesVersion    int64
	Status           ImageStatus
	CompressedImages []string
	Error            string
}

// ProductService reads and changes products. Every change that an outside
// consumer must know about (created, images changed, deleted) commits its
// event to the outbox in the same transaction as the change itself.
type ProductService interface {
	// FindProductByID returns the product or an ENOTFOUND error.
	FindProductByID(ctx context.Context, id int64) (*Product, error)

	// FindProducts returns one page of products matching the filter.
	FindProducts(ctx context.Context, filter ProductFilter) ([]*Product, error)

	// CreateProduct stores a new product and its ProductCreated event. With a
	// non-nil key, a retry returns the first response instead.
	CreateProduct(ctx context.Context, p *Product, key *IdempotencyKey) (*Created, error)

	// UpdateProduct applies upd and returns the new state. Changed images
	// reset the compressed ones and schedule new processing.
	UpdateProduct(ctx context.Context, id int64, upd ProductUpdate) (*Product, error)

	// DeleteProduct removes the product; its stored images go asynchronously.
	DeleteProduct(ctx context.Context, id int64) error

	// SetImageResult records the image worker's outcome if the product's
	// images are still those of res.ImagesVersion and have no result yet. It
	// reports whether anything changed: a stale result (the images changed
	// since, or the product is gone) and a late one (the images are already
	// done or failed) change nothing.
	SetImageResult(ctx context.Context, res ImageResult) (bool, error)

	// StartImageRun records that the image worker starts processing the
	// product's images of imagesVersion: their status becomes processing, and
	// the run counts as unfinished until FinishImageRun or a result ends it.
	StartImageRun(ctx context.Context, productID, imagesVersion int64) (ImageRun, error)

	// FinishImageRun ends a run of StartImageRun that stopped without a
	// result (a transient failure, or the worker's own shutdown), so that it
	// is not taken for a run that never ended.
	FinishImageRun(ctx context.Context, productID, imagesVersion int64) error

	// RescheduleImages schedules the product's images to be processed again,
	// as a change of images would, and records the reason; the images_changed
	// event commits with it. It returns an ENOTFOUND error for a missing
	// product and an ECONFLICT one when the product has no images or does
	// not meet r's conditions.
	RescheduleImages(ctx context.Context, r Reschedule) (*Product, error)
}

// Reschedule asks for a product's images to be processed again: their
// images version moves on (so that every message about the old one becomes
// stale), their status is pending, their runs and result are cleared.
type Reschedule struct {
	ProductID int64
	// Reason says who asks and why. It is recorded on the product with the
	// count of its re-schedules (reset when its images change), and logged.
	Reason string
	// ImagesVersion, when not zero, re-schedules only while the product's
	// images are still those of this version: what a sweep or a parked
	// message saw.
	ImagesVersion int64
	// From, when not empty, re-schedules only images in one of these
	// statuses.
	From []ImageStatus
}

// StuckImages is a product whose images have waited for a result, since
// Since, without a run starting on them.
type StuckImages struct {
	ProductID     int64
	ImagesVersion int64
	Status        ImageStatus
	Since         time.Time
	// Reschedules counts the times these images were scheduled again.
	Reschedules int
}

// ImageRun is what ProductService.StartImageRun recorded.
type ImageRun struct {
	// Started is false when the images no longer wait for a result (they
	// changed, are done or failed, or the product is gone); then nothing was
	// recorded.
	Started bool
	// Unfinished counts the earlier runs on the same images that started and
	// never ended: each one a worker process that died, or lost its way,
	// while it held them.
	Unfinished int
}
