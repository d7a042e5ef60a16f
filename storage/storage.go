// Package storage keeps productd's image objects in an S3 bucket (MinIO
// locally) and names them: where an original or a compressed image lives,
// and the public URL a client gets for it.
//
// Two prefixes are public: PrefixOriginals holds files uploaded through the
// API, one unique key per upload, and PrefixProducts holds the compressed
// images, under keys derived from the product, its images version, the
// image's index and the hash of its original, so that processing the same
// event twice overwrites an object instead of adding one. The store never
// decides which objects a product owns: it deletes what it is told to, and
// a product's own prefix.
package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/settings"
)

// Config is how to reach the bucket and how its objects are addressed from
// outside. Endpoint, Bucket and PublicURL are required; the zero value of
// each other numeric field means its default, and a negative one is refused.
type Config struct {
	// Endpoint is host:port of the S3 API, for example 127.0.0.1:9000.
	Endpoint string
	// UseSSL selects https for the S3 API.
	UseSSL    bool
	AccessKey string
	SecretKey string
	// Bucket holds every object; Open creates it when it is missing.
	Bucket string
	// PublicURL is the prefix of every URL handed to clients, such as
	// http://127.0.0.1:9000/productd (path-style) or a CDN's address. An
	// object's URL is PublicURL + "/" + its key.
	PublicURL string
	// MaxRetries bounds the S3 client's own retries of one request. The
	// image worker retries whole messages with growing delays, so a long
	// retry loop here would only hide an outage. Zero means
	// DefaultMaxRetries (2).
	MaxRetries int
	// Timeout bounds one request that the caller's context does not bound
	// more tightly. Zero means DefaultTimeout (30 s).
	Timeout time.Duration
}

// Defaults of Config.
const (
	DefaultMaxRetries = 2
	DefaultTimeout    = 30 * time.Second
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.MaxRetries = cmp.Or(c.MaxRetries, DefaultMaxRetries)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	for _, f := range []struct{ name, value string }{{"Endpoint", c.Endpoint}, {"Bucket", c.Bucket}, {"PublicURL", c.PublicURL}} {
		if f.value == "" {
			return fmt.Errorf("storage: Config.%s is required", f.name)
		}
	}
	return cmp.Or(
		settings.NonNegative("storage", settings.F("MaxRetries", c.MaxRetries)),
		settings.NonNegative("storage", settings.F("Timeout", c.Timeout)),
	)
}

// Store reads and writes the objects of one bucket. It is safe for
// concurrent use.
type Store struct {
	client  *minio.Client
	bucket  string
	public  string
	timeout time.Duration
}

// Open returns a Store for cfg, creating the bucket when it is missing and
// letting anonymous clients read the public prefixes, so that the URLs it
// hands out work without credentials. It fails when the S3 API is down or
// the credentials are refused.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.EnsureBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// New returns a Store for cfg without contacting the server.
func New(cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     cfg.UseSSL,
		MaxRetries: cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("create S3 client for %s: %w", cfg.Endpoint, err)
	}
	return &Store{client: client, bucket: cfg.Bucket, public: trimSlash(cfg.PublicURL), timeout: cfg.Timeout}, nil
}

// Bucket returns the name of the store's bucket.
func (s *Store) Bucket() string { return s.bucket }

// EnsureBucket creates the bucket when it is missing and sets its policy so
// that anonymous clients may read, but not list, the public prefixes.
func (s *Store) EnsureBucket(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	exists, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return classify(fmt.Sprintf("check bucket %s", s.bucket), err)
	}
	if !exists {
		err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{})
		// Another process may have made it in between.
		if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			return classify(fmt.Sprintf("create bucket %s", s.bucket), err)
		}
	}
	if err := s.client.SetBucketPolicy(ctx, s.bucket, readPolicy(s.bucket)); err != nil {
		return classify(fmt.Sprintf("set read policy of bucket %s", s.bucket), err)
	}
	return nil
}

// readPolicy allows anonymous GetObject on the public prefixes only.
func readPolicy(bucket string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",`+
		`"Principal":{"AWS":["*"]},"Action":["s3:GetObject"],`+
		`"Resource":["arn:aws:s3:::%[1]s/%[2]s*","arn:aws:s3:::%[1]s/%[3]s*"]}]}`,
		bucket, PrefixOriginals, PrefixProducts)
}

// ErrUnavailable is in the chain of every error of a Store that is not about
// a missing object: the storage itself is down, slow or refusing, whatever
// the object.
var ErrUnavailable = errors.New("image storage unavailable")

// classify wraps err with what was being done. A missing object is an
// ENOTFOUND error; everything else (the server down or slow, a 5xx, refused
// credentials) is EUNAVAILABLE and ErrUnavailable, which the image worker
// retries later.
func classify(doing string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	resp := minio.ToErrorResponse(err)
	if resp.Code == "NoSuchKey" || (resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket") {
		return fmt.Errorf("%s: %w: %w", doing, productd.Errorf(productd.ENOTFOUND, "the stored object does not exist"), err)
	}
	return fmt.Errorf("%s: %w: %w: %w", doing, productd.Errorf(productd.EUNAVAILABLE, "the image storage is unavailable"), ErrUnavailable, err)
}
