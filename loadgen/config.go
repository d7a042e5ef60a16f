package loadgen

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/productd/productd/internal/settings"
)

// Config is a load run's settings. BaseURL is required, and one of Count and
// Duration (or a context that ends); every other zero field takes the
// default in its comment.
type Config struct {
	// BaseURL is the API's address, e.g. http://127.0.0.1:8080.
	BaseURL string

	// Rate is how many products a second to create. Zero means as fast as
	// Concurrency allows.
	Rate float64

	// Count is how many products to create; zero means no limit.
	Count int

	// Duration bounds the creating; zero means no limit.
	Duration time.Duration

	// Concurrency is how many create requests may be in flight at once.
	// Zero means DefaultConcurrency (16); a rate that needs more is not
	// reached, and the report says so.
	Concurrency int

	// UploadShare is the share of products created with an uploaded image
	// (multipart/form-data) instead of image URLs. Zero means
	// DefaultUploadShare (0.1); a negative value means none.
	UploadShare float64

	// InvalidShare is the share of products whose one image is not a usable
	// image (not an image, cut short, or missing): they must end failed.
	// Zero means DefaultInvalidShare (0.05); a negative value means none.
	InvalidShare float64

	// MaxImages is the most images a valid product gets; each gets from one
	// to MaxImages. Zero means DefaultMaxImages (2).
	MaxImages int

	// UserID is the user_id of every product created, which the load
	// generator lists them by. Zero means a random one, so that runs do not
	// see each other's products.
	UserID int64

	// Images serves the images. Nil means one of the run's own on
	// 127.0.0.1, closed at the end.
	Images *ImageServer

	// RetryFor is how long a create that fails for a reason worth retrying
	// (no answer, 5xx, 429) is retried, with the same Idempotency-Key, before
	// the product counts as refused. Zero means DefaultRetryFor (2 min).
	RetryFor time.Duration

	// FollowFor is how long, after the last create, the load generator waits
	// for every product to end done or failed. Zero means DefaultFollowFor
	// (5 min).
	FollowFor time.Duration

	// PollInterval is how often the products are listed to follow them.
	// Zero means DefaultPollInterval (250 ms).
	PollInterval time.Duration

	// Progress receives a progress line every ProgressInterval (zero means
	// DefaultProgressInterval, 1 s); nil means none.
	Progress         io.Writer
	ProgressInterval time.Duration

	// KeepProducts keeps a record of every product in the report.
	KeepProducts bool

	// Client sends the requests. Nil means a client whose requests time out
	// after DefaultClientTimeout (30 s).
	Client *http.Client
}

// Defaults of Config.
const (
	DefaultConcurrency      = 16
	DefaultUploadShare      = 0.1
	DefaultInvalidShare     = 0.05
	DefaultMaxImages        = 2
	DefaultRetryFor         = 2 * time.Minute
	DefaultFollowFor        = 5 * time.Minute
	DefaultPollInterval     = 250 * time.Millisecond
	DefaultProgressInterval = time.Second
	DefaultClientTimeout    = 30 * time.Second
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.UploadShare = cmp.Or(c.UploadShare, DefaultUploadShare)
	c.InvalidShare = cmp.Or(c.InvalidShare, DefaultInvalidShare)
	c.MaxImages = cmp.Or(c.MaxImages, DefaultMaxImages)
	c.RetryFor = cmp.Or(c.RetryFor, DefaultRetryFor)
	c.FollowFor = cmp.Or(c.FollowFor, DefaultFollowFor)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.ProgressInterval = cmp.Or(c.ProgressInterval, DefaultProgressInterval)
	c.Client = cmp.Or(c.Client, &http.Client{Timeout: DefaultClientTimeout})
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults. UploadShare and InvalidShare may be negative
// (none).
func (c Config) validate() error {
	switch {
	case c.BaseURL == "":
		return errors.New("loadgen: Config.BaseURL is required")
	case c.Rate < 0:
		return fmt.Errorf("loadgen: Config.Rate is %v: it must not be negative", c.Rate)
	case c.UploadShare > 1 || c.InvalidShare > 1 || c.UploadShare+c.InvalidShare > 1:
		return errors.New("loadgen: Config.UploadShare and Config.InvalidShare are shares of one")
	}
	return cmp.Or(
		settings.NonNegative("loadgen", settings.F("Count", c.Count), settings.F("Concurrency", c.Concurrency), settings.F("MaxImages", c.MaxImages)),
		settings.NonNegative("loadgen", settings.F("Duration", c.Duration), settings.F("RetryFor", c.RetryFor), settings.F("FollowFor", c.FollowFor),
			settings.F("PollInterval", c.PollInterval), settings.F("ProgressInterval", c.ProgressInterval)),
	)
}
