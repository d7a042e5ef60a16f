// Package api is productd's HTTP interface: the Gin router, the product
// handlers with their request validation, the mapping of application errors
// to statuses, and the middleware that gives every request an id and an
// access log line.
//
// # Client addresses
//
// The server trusts no proxy unless Config.TrustedProxies names it: a
// request's client is the peer of its socket, whatever X-Forwarded-For or
// X-Real-IP claim. Behind a trusted proxy, the client is the last address in
// X-Forwarded-For that is not itself a trusted proxy. Routes that authorise
// by address (loopback clients only, for example) get the client from
// ClientAddr, the same address the access log shows as client_ip.
//
// # Readiness
//
// /healthz answers while the process serves HTTP. /readyz runs the checks
// in Config.Checks: each part of the process registers the dependencies it
// needs (Checks.Add, or Checks.AddOptional for one it can serve without)
// and /readyz answers 503 while a required one is down. To an anonymous
// caller it names the dependencies that are down and nothing more; each
// one's error goes to the log when its state changes.
package api

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
	"github.com/productd/productd/internal/settings"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes         = 1 << 20
	DefaultMaxUploadBytes       = 64 << 20
	DefaultMaxConcurrentUploads = 8
	DefaultReadyTimeout         = 2 * time.Second
	DefaultQueryTimeout         = 5 * time.Second
)

// OriginalStore keeps the image files uploaded with a product. The API stores
// them before the product's transaction, which claims them for the product
// (productd.Product.Uploads), and releases them when no product was created
// or changed.
type OriginalStore interface {
	// PutOriginal stores size bytes of an uploaded image read from r, as an
	// upload no product owns yet, and returns it.
	PutOriginal(ctx context.Context, contentType string, r io.Reader, size int64) (productd.Upload, error)
	// ReleaseOriginals removes uploads of PutOriginal that no product's
	// transaction claimed; claimed ones stay.
	ReleaseOriginals(ctx context.Context, uploads []productd.Upload) error
}

// Config holds the server's dependencies and limits. Log is required.
type Config struct {
	// Products reads and writes the catalogue. Nil leaves the product
	// routes and /openapi.yaml out: the server of a process that does not
	// serve the API answers /healthz and /readyz (and what other packages
	// mount) only.
	Products productd.ProductService

	// Log receives one access line per request and every internal error.
	Log *logrus.Logger

	// Checks are the readiness checks of /readyz; nil means none.
	Checks *Checks

	// Originals stores uploaded images. When nil, multipart requests are
	// refused with 415.
	Originals OriginalStore

	// MaxBodyBytes caps a JSON request body. Zero means
	// DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64

	// MaxUploadBytes caps a multipart request body. Zero means
	// DefaultMaxUploadBytes (64 MiB).
	MaxUploadBytes int64

	// MaxConcurrentUploads bounds the multipart requests handled at once;
	// one more is refused with 503 and Retry-After. Their files are spooled
	// to the temporary directory, so disk, not memory, holds up to
	// MaxConcurrentUploads × MaxUploadBytes. Zero means
	// DefaultMaxConcurrentUploads (8).
	MaxConcurrentUploads int

	// SpoolDir is where uploaded files wait, each in a file of its own,
	// until their request is read whole; empty means os.TempDir() ($TMPDIR
	// or /tmp).
	SpoolDir string

	// ReadyTimeout bounds the readiness checks together. Zero means
	// DefaultReadyTimeout (2 s).
	ReadyTimeout time.Duration

	// QueryTimeout is the deadline of what one request asks of Products:
	// waiting for a database connection and every statement, through the
	// cache when there is one. Past it the request fails with 503 and
	// Products is expected to stop the work (package db cancels the
	// statement on the server). Zero means DefaultQueryTimeout (5 s).
	QueryTimeout time.Duration

	// TrustedProxies are the addresses whose X-Forwarded-For header names
	// the client (see ClientAddr). Empty trusts no proxy: every request
	// comes from its socket's peer, whatever its headers claim.
	TrustedProxies []netip.Prefix

	// Instrument runs first for every request, around everything else
	// (package telemetry's metrics and spans); the context it leaves in the
	// request reaches the handlers and the log lines. Nil means none.
	Instrument gin.HandlerFunc
}

// Server routes HTTP requests to the handlers. cmd/productd adds the ops
// console's routes through Router before serving.
type Server struct {
	cfg           Config
	router        *gin.Engine
	dependencyLog dependencyLog
	// uploads holds a token per multipart request in progress.
	uploads chan struct{}
}

//go:embed openapi.yaml
var openAPISpec []byte

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.MaxUploadBytes = cmp.Or(c.MaxUploadBytes, DefaultMaxUploadBytes)
	c.MaxConcurrentUploads = cmp.Or(c.MaxConcurrentUploads, DefaultMaxConcurrentUploads)
	c.ReadyTimeout = cmp.Or(c.ReadyTimeout, DefaultReadyTimeout)
	c.QueryTimeout = cmp.Or(c.QueryTimeout, DefaultQueryTimeout)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	if c.Log == nil {
		return errors.New("api: Config.Log is required")
	}
	return cmp.Or(
		settings.NonNegative("api", settings.F("MaxBodyBytes", c.MaxBodyBytes), settings.F("MaxUploadBytes", c.MaxUploadBytes)),
		settings.NonNegative("api", settings.F("MaxConcurrentUploads", c.MaxConcurrentUploads)),
		settings.NonNegative("api", settings.F("ReadyTimeout", c.ReadyTimeout), settings.F("QueryTimeout", c.QueryTimeout)),
	)
}

// NewServer returns a server with /healthz and /readyz mounted, and with
// Config.Products every product route and the OpenAPI description. It
// panics when cfg has no Log or a negative limit, which package config never
// produces.
func NewServer(cfg Config) *Server {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	s := &Server{cfg: cfg, router: gin.New(), uploads: make(chan struct{}, cfg.MaxConcurrentUploads)}
	r := s.router
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	trusted := trustProxies(r, cfg.TrustedProxies)
	if cfg.Instrument != nil {
		r.Use(cfg.Instrument)
	}
	r.Use(requestID(), clientAddr(trusted), accessLog(cfg.Log), recovery(cfg.Log))
	r.NoRoute(func(c *gin.Context) {
		s.error(c, productd.Errorf(productd.ENOTFOUND, "no route for %s %s", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		writeError(c, http.StatusMethodNotAllowed, "method_not_allowed", "method "+c.Request.Method+" is not allowed here")
	})

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	if cfg.Products == nil {
		return s
	}
	r.POST("/products", s.createProduct)
	r.GET("/products", s.listProducts)
	r.GET("/products/:id", s.getProduct)
	r.PATCH("/products/:id", s.updateProduct)
	r.DELETE("/products/:id", s.deleteProduct)
	r.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", openAPISpec) })
	return s
}

// Router returns the Gin engine, so that routes of other packages (the ops
// console's) share the server's middleware and listener; add them before
// the server starts serving.
func (s *Server) Router() *gin.Engine { return s.router }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }
