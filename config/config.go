// Package config reads productd's settings from the environment.
//
// Every setting has a default that works against the local services that
// scripts/services brings up, so a plain `productd` starts on a developer's
// machine. A .env file in the working directory is read first when present;
// variables already set in the environment win over it.
//
// A bad value stops the start with an error that names the variable on one
// line. Credentials never appear in these errors: the password of every URL
// (Postgres, AMQP, Redis), the values of password=, sslpassword= and other
// secret keys (in keyword/value strings and in query parameters) and the
// lines of a broken .env file are redacted before the error is made.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/joho/godotenv"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/productd/productd/internal/netallow"
)

// Config is every setting of productd, with its environment variable and
// default in the field's comment.
type Config struct {
	// DatabaseURL is DATABASE_URL, a postgres:// URL or a libpq
	// keyword/value string (host=... dbname=...). When it is unset, the seed
	// service's POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER,
	// POSTGRES_PASSWORD and POSTGRES_DB build it; each defaults to the local
	// service.
	DatabaseURL string

	// DBStatementTimeout (DB_STATEMENT_TIMEOUT) is the statement_timeout
	// Postgres enforces on every connection of productd's pool, whatever
	// the role: the bound on a statement that no deadline of its caller
	// cancels. Migrations are not bound by it. Zero (unset) means
	// db.DefaultStatementTimeout (30 s).
	DBStatementTimeout time.Duration

	// APIQueryTimeout (API_QUERY_TIMEOUT) is the deadline of the database
	// work of one API request: waiting for a pooled connection and every
	// statement, through the cache. When it passes, the statement is
	// cancelled on the server and the client gets 503. Zero (unset) means
	// api.DefaultQueryTimeout (5 s).
	APIQueryTimeout time.Duration

	// AMQPURL is AMQP_URL, default amqp://guest:guest@127.0.0.1:5672/. A
	// comma-separated list of URLs names the nodes of a RabbitMQ cluster;
	// productd connects to one and moves to another when it goes away.
	AMQPURL string

	// RedisURL is REDIS_URL, default redis://127.0.0.1:6379/0.
	RedisURL string

	// CacheLocal (CACHE_LOCAL, default true) keeps the hottest products in
	// memory in front of Redis, invalidated across processes (see package
	// cache). Every process sharing a Redis should set it alike.
	CacheLocal bool

	// CachePrefix (CACHE_PREFIX, default productd:cache:) starts every Redis
	// key and channel of the cache. Deployments sharing a Redis need
	// different prefixes; the processes of one deployment need the same.
	CachePrefix string

	// S3Endpoint (S3_ENDPOINT, default 127.0.0.1:9000) is host:port of the
	// S3 API; S3UseSSL (S3_USE_SSL, default false) selects https.
	S3Endpoint  string
	S3UseSSL    bool
	S3AccessKey string // S3_ACCESS_KEY, default minioadmin
	S3SecretKey string // S3_SECRET_KEY, default minioadmin
	S3Bucket    string // S3_BUCKET, default productd

	// S3PublicURL (S3_PUBLIC_URL, default http://127.0.0.1:9000/productd) is
	// the prefix of every image URL handed to clients.
	S3PublicURL string

	// HTTPAddr (HTTP_ADDR, default :8080) is where every productd process
	// serves HTTP: /healthz and /readyz always, the product API in a
	// process that runs the api role.
	HTTPAddr string

	// TrustedProxies (TRUSTED_PROXIES, comma-separated IP addresses and
	// CIDRs, default empty) are the proxies whose X-Forwarded-For header
	// names the client. A request from any other address is taken to come
	// from that address, whatever its headers claim; empty trusts no proxy.
	// A bare address is a one-address prefix.
	TrustedProxies []netip.Prefix

	// OpsToken (OPS_TOKEN, default empty) protects the ops dashboard and the
	// River UI. Empty means they answer loopback clients only.
	OpsToken string

	// ManagementURL (MANAGEMENT_URL, default empty) is RabbitMQ's
	// management API, which the ops console reads queue depths and rates
	// from, e.g. http://user:pass@rabbit:15672. Empty means port 15672 on
	// the first AMQP_URL host, with that URL's credentials.
	ManagementURL string

	// ImageFetchAllow (IMAGE_FETCH_ALLOW, comma-separated, default empty)
	// lists host names, IP addresses and CIDRs, each with an optional port,
	// the image worker may fetch from although the SSRF guard would refuse
	// them (what each allows: package netallow).
	ImageFetchAllow []string

	// LogLevel is LOG_LEVEL: debug, info (default), warn or error.
	LogLevel string

	// LogFormat is LOG_FORMAT: json (default) or text.
	LogFormat string

	// ShutdownTimeout (SHUTDOWN_TIMEOUT, default 30s) bounds how long a
	// SIGTERM waits for in-flight work.
	ShutdownTimeout time.Duration

	// ImageSweepAfter (IMAGE_SWEEP_AFTER, default 1h) is how long images
	// may go without a run before the image sweep schedules them again:
	// longer than the worker's whole retry ladder, or images still retrying
	// are scheduled twice (harmlessly, but for nothing).
	ImageSweepAfter time.Duration

	// UploadSweepAfter (UPLOAD_SWEEP_AFTER, default 1h) is how long an
	// upload no product owns (its request failed, and so did removing it
	// at once) stays in the bucket before the uploads sweep removes it:
	// longer than any request between storing a file and committing its
	// product.
	UploadSweepAfter time.Duration

	// Tracing turns on OpenTelemetry tracing, exported over OTLP/HTTP; it
	// is off (the default) unless an endpoint is set (see tracing.go for
	// the variables).
	Tracing bool

	// ServiceName (OTEL_SERVICE_NAME, default productd) names the
	// processes in their traces.
	ServiceName string

	// MaxConcurrentUploads (MAX_CONCURRENT_UPLOADS, default 8) bounds the
	// multipart requests with image files the API handles at once; one more
	// gets 503 with Retry-After.
	MaxConcurrentUploads int
}

// Load reads the configuration from the environment, after loading a .env
// file from the working directory when there is one.
func Load() (*Config, error) {
	return LoadWith(os.LookupEnv)
}

// LoadWith is Load with the environment read through lookup, which behaves
// like os.LookupEnv and usually falls back to it: the .env file is loaded
// into the process's environment first.
func LoadWith(lookup func(string) (string, bool)) (*Config, error) {
	if err := godotenv.Load(); err != nil && !os.IsNotExist(err) {
		return nil, envFileError(err)
	}
	return FromLookup(lookup)
}

// envFileError describes a broken .env file without the text around the
// fault, which godotenv quotes and which may hold a password whose name it
// cut off.
func envFileError(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, " near "); i >= 0 {
		msg = msg[:i]
	}
	if i := strings.Index(msg, "quoted value"); i >= 0 {
		msg = msg[:i+len("quoted value")]
	}
	return errors.New("config: read .env: " + msg)
}

// FromLookup builds the configuration from lookup, which behaves like
// os.LookupEnv. The first bad value stops it with an error that names the
// variable.
func FromLookup(lookup func(string) (string, bool)) (*Config, error) {
	r := reader{lookup: lookup}
	c := &Config{
		DatabaseURL:        r.parsed("DATABASE_URL", r.databaseURL(seedDatabaseURL(lookup)), parsePostgres),
		DBStatementTimeout: r.duration("DB_STATEMENT_TIMEOUT", 0),
		APIQueryTimeout:    r.duration("API_QUERY_TIMEOUT", 0),
		AMQPURL:            r.amqpURLs("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
		RedisURL:           r.parsed("REDIS_URL", r.url("REDIS_URL", "redis://127.0.0.1:6379/0", "redis", "rediss", "unix"), parseRedis),
		CacheLocal:         r.bool("CACHE_LOCAL", true),
		CachePrefix:        r.str("CACHE_PREFIX", "productd:cache:"),
		S3Endpoint:         r.hostPort("S3_ENDPOINT", "127.0.0.1:9000"),
		S3UseSSL:           r.bool("S3_USE_SSL", false),
		S3AccessKey:        r.str("S3_ACCESS_KEY", "minioadmin"),
		S3SecretKey:        r.str("S3_SECRET_KEY", "minioadmin"),
		S3Bucket:           r.str("S3_BUCKET", "productd"),
		S3PublicURL:        strings.TrimRight(r.url("S3_PUBLIC_URL", "http://127.0.0.1:9000/productd", "http", "https"), "/"),
		HTTPAddr:           r.hostPort("HTTP_ADDR", ":8080"),
		TrustedProxies:     r.prefixes("TRUSTED_PROXIES"),
		OpsToken:           r.str("OPS_TOKEN", ""),
		ManagementURL:      r.managementURL("MANAGEMENT_URL"),
		ImageFetchAllow:    r.allowList("IMAGE_FETCH_ALLOW"),
		LogLevel:           r.oneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:          r.oneOf("LOG_FORMAT", "json", "json", "text"),
		ShutdownTimeout:    r.duration("SHUTDOWN_TIMEOUT", 30*time.Second),
		ImageSweepAfter:    r.duration("IMAGE_SWEEP_AFTER", time.Hour),
		UploadSweepAfter:   r.duration("UPLOAD_SWEEP_AFTER", time.Hour),
		Tracing:            r.tracing(),
		ServiceName:        r.str("OTEL_SERVICE_NAME", "productd"),

		MaxConcurrentUploads: r.positiveInt("MAX_CONCURRENT_UPLOADS", 8),
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// seedDatabaseURL builds a URL from the seed service's POSTGRES_* variables,
// each defaulting to the local service.
func seedDatabaseURL(lookup func(string) (string, bool)) string {
	get := func(name, def string) string {
		if v, ok := lookup(name); ok && v != "" {
			return v
		}
		return def
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(get("POSTGRES_USER", "postgres"), get("POSTGRES_PASSWORD", "postgres")),
		Host:     net.JoinHostPort(get("POSTGRES_HOST", "127.0.0.1"), get("POSTGRES_PORT", "5432")),
		Path:     "/" + get("POSTGRES_DB", "productd"),
		RawQuery: "sslmode=" + get("POSTGRES_SSLMODE", "disable"),
	}
	return u.String()
}

// reader reads variables and keeps the first error, so that Load reads as a
// plain list of settings.
type reader struct {
	lookup func(string) (string, bool)
	err    error
}

func (r *reader) str(name, def string) string {
	if v, ok := r.lookup(name); ok && v != "" {
		return v
	}
	return def
}

// fail keeps the first error. Value is redacted here, so that no caller
// can forget to.
func (r *reader) fail(name, value, why string) {
	if r.err == nil {
		r.err = fmt.Errorf("config: %s=%q: %s", name, redact(value), why)
	}
}

func (r *reader) url(name, def string, schemes ...string) string {
	return r.checkURL(name, r.str(name, def), schemes...)
}

// checkURL checks that v, the value (or a part of the value) of the
// variable name, is a URL with one of schemes.
func (r *reader) checkURL(name, v string, schemes ...string) string {
	u, err := url.Parse(v)
	if err != nil {
		r.fail(name, v, "not a URL")
		return v
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	r.fail(name, v, "scheme must be one of "+strings.Join(schemes, ", "))
	return v
}

// databaseURL reads DATABASE_URL, which pgx takes as a URL or as a libpq
// keyword/value string; only a URL has a scheme to check here.
func (r *reader) databaseURL(def string) string {
	v := r.str("DATABASE_URL", def)
	if !strings.Contains(v, "://") {
		return v
	}
	return r.url("DATABASE_URL", def, "postgres", "postgresql")
}

// parsed checks a URL with the parser of the library that will use it, so
// that a value the library would refuse stops the start here, with the
// variable's name, instead of later in a log line that does not name it.
func (r *reader) parsed(name, value string, parse func(string) error) string {
	if r.err == nil {
		if err := parse(value); err != nil {
			r.fail(name, value, "not usable: "+scrub(strings.ReplaceAll(err.Error(), value, "(the value)"), value))
		}
	}
	return value
}

// amqpURLs reads one AMQP URL or a comma-separated list of them, checking
// each, and returns the value as given.
func (r *reader) amqpURLs(name, def string) string {
	v := r.str(name, def)
	for _, u := range strings.Split(v, ",") {
		r.parsed(name, r.checkURL(name, strings.TrimSpace(u), "amqp", "amqps"), parseAMQP)
	}
	return v
}

func parsePostgres(s string) error { _, err := pgx.ParseConfig(s); return err }
func parseAMQP(s string) error     { _, err := amqp.ParseURI(s); return err }
func parseRedis(s string) error    { _, err := redis.ParseURL(s); return err }

// managementURL reads an optional http(s) URL.
func (r *reader) managementURL(name string) string {
	if v := r.str(name, ""); v != "" {
		return r.checkURL(name, v, "http", "https")
	}
	return ""
}

func (r *reader) hostPort(name, def string) string {
	v := r.str(name, def)
	if _, port, err := net.SplitHostPort(v); err != nil {
		r.fail(name, v, "want host:port")
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		r.fail(name, v, "port must be a number from 0 to 65535")
	}
	return v
}

func (r *reader) bool(name string, def bool) bool {
	v, ok := r.lookup(name)
	if !ok || v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, v, "want true or false")
	}
	return b
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v, ok := r.lookup(name)
	if !ok || v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.fail(name, v, "want a positive duration such as 30s")
	}
	return d
}

func (r *reader) positiveInt(name string, def int) int {
	v, ok := r.lookup(name)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		r.fail(name, v, "want a positive whole number")
	}
	return n
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(r.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, v, "want one of "+strings.Join(allowed, ", "))
	return v
}

// allowList reads comma-separated allow-list entries: host names, IP
// addresses or CIDRs, each with an optional port (see package netallow).
func (r *reader) allowList(name string) []string {
	var out []string
	for _, item := range strings.Split(r.str(name, ""), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if _, err := netallow.Parse(item); err != nil {
			r.fail(name, item, err.Error())
		}
		out = append(out, item)
	}
	return out
}

// prefixes reads comma-separated IP addresses and CIDRs.
func (r *reader) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, item := range strings.Split(r.str(name, ""), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if addr, err := netip.ParseAddr(item); err == nil {
			addr = addr.WithZone("").Unmap()
			out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			r.fail(name, item, "want IP addresses or CIDRs, comma-separated")
			continue
		}
		out = append(out, p.Masked())
	}
	return out
}
