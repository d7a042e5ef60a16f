package config_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/productd/productd/config"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.FromLookup(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{
		DatabaseURL:      "postgres://postgres:postgres@127.0.0.1:5432/productd?sslmode=disable",
		AMQPURL:          "amqp://guest:guest@127.0.0.1:5672/",
		RedisURL:         "redis://127.0.0.1:6379/0",
		S3Endpoint:       "127.0.0.1:9000",
		S3AccessKey:      "minioadmin",
		S3SecretKey:      "minioadmin",
		S3Bucket:         "productd",
		S3PublicURL:      "http://127.0.0.1:9000/productd",
		HTTPAddr:         ":8080",
		LogLevel:         "info",
		LogFormat:        "json",
		ShutdownTimeout:  30 * time.Second,
		ImageSweepAfter:  time.Hour,
		UploadSweepAfter: time.Hour,
		CacheLocal:       true,
		CachePrefix:      "productd:cache:",
		ServiceName:      "productd",

		MaxConcurrentUploads: 8,
	}
	if diff := cmp.Diff(want, *c, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestOverrides(t *testing.T) {
	t.Parallel()
	c, err := config.FromLookup(lookup(map[string]string{
		"DATABASE_URL":         "postgres://u:p@db:5433/cat",
		"AMQP_URL":             "amqps://rabbit/",
		"REDIS_URL":            "redis://cache:6380/2",
		"S3_ENDPOINT":          "s3.example.com:443",
		"S3_USE_SSL":           "true",
		"S3_PUBLIC_URL":        "https://cdn.example.com/img/",
		"HTTP_ADDR":            "127.0.0.1:9090",
		"OPS_TOKEN":            "t0ken",
		"IMAGE_FETCH_ALLOW":    "127.0.0.1, 10.0.0.0/8:8080 ,images.example.com:*",
		"LOG_LEVEL":            "DEBUG",
		"LOG_FORMAT":           "text",
		"SHUTDOWN_TIMEOUT":     "5s",
		"TRUSTED_PROXIES":      " 10.0.0.7, 192.168.1.9/24,::1 ,fd00::/8",
		"MANAGEMENT_URL":       "https://ops:pw@rabbit-mgmt:15671",
		"DB_STATEMENT_TIMEOUT": "12s",
		"API_QUERY_TIMEOUT":    "1500ms",
		"IMAGE_SWEEP_AFTER":    "20m",
		"UPLOAD_SWEEP_AFTER":   "2m",
		// The seed's variables lose to DATABASE_URL.
		"POSTGRES_HOST": "ignored",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{
		DatabaseURL:        "postgres://u:p@db:5433/cat",
		DBStatementTimeout: 12 * time.Second,
		APIQueryTimeout:    1500 * time.Millisecond,
		AMQPURL:            "amqps://rabbit/",
		RedisURL:           "redis://cache:6380/2",
		CacheLocal:         true,
		CachePrefix:        "productd:cache:",
		S3Endpoint:         "s3.example.com:443",
		S3UseSSL:           true,
		S3AccessKey:        "minioadmin",
		S3SecretKey:        "minioadmin",
		S3Bucket:           "productd",
		S3PublicURL:        "https://cdn.example.com/img",
		HTTPAddr:           "127.0.0.1:9090",
		// Bare addresses are one-address prefixes; host bits are masked off.
		TrustedProxies: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.7/32"), netip.MustParsePrefix("192.168.1.0/24"),
			netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("fd00::/8"),
		},
		OpsToken:         "t0ken",
		ManagementURL:    "https://ops:pw@rabbit-mgmt:15671",
		ImageFetchAllow:  []string{"127.0.0.1", "10.0.0.0/8:8080", "images.example.com:*"},
		LogLevel:         "debug",
		LogFormat:        "text",
		ShutdownTimeout:  5 * time.Second,
		ImageSweepAfter:  20 * time.Minute,
		UploadSweepAfter: 2 * time.Minute,
		ServiceName:      "productd",

		MaxConcurrentUploads: 8,
	}
	if diff := cmp.Diff(want, *c, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("overrides (-want +got):\n%s", diff)
	}
}

func TestSeedPostgresVariables(t *testing.T) {
	t.Parallel()
	c, err := config.FromLookup(lookup(map[string]string{
		"POSTGRES_HOST": "db.internal", "POSTGRES_PORT": "6432", "POSTGRES_USER": "app",
		"POSTGRES_PASSWORD": "p@ss word", "POSTGRES_DB": "products",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://app:p%40ss%20word@db.internal:6432/products?sslmode=disable"; c.DatabaseURL != want {
		t.Errorf("DatabaseURL = %s, want %s", c.DatabaseURL, want)
	}
}

func TestBadValues(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]string{
		"DATABASE_URL":         "mysql://secret:hunter2@x/y",
		"AMQP_URL":             "http://rabbit",
		"REDIS_URL":            "::",
		"S3_ENDPOINT":          "no-port",
		"HTTP_ADDR":            ":99999",
		"S3_USE_SSL":           "maybe",
		"LOG_LEVEL":            "loud",
		"LOG_FORMAT":           "xml",
		"SHUTDOWN_TIMEOUT":     "soon",
		"IMAGE_FETCH_ALLOW":    "10.0.0.0/99",
		"S3_PUBLIC_URL":        "ftp://x",
		"TRUSTED_PROXIES":      "10.0.0.1,proxy.example.com",
		"DB_STATEMENT_TIMEOUT": "0s",
		"API_QUERY_TIMEOUT":    "-1s",
		"IMAGE_SWEEP_AFTER":    "hourly",
		"UPLOAD_SWEEP_AFTER":   "-1m",
		"MANAGEMENT_URL":       "amqp://rabbit:15672",
	} {
		_, err := config.FromLookup(lookup(map[string]string{name: value}))
		if err == nil {
			t.Errorf("%s=%q accepted", name, value)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "config: "+name+"=") || strings.Contains(msg, "\n") {
			t.Errorf("%s=%q: error %q does not name the variable on one line", name, value, msg)
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("error leaks a password: %q", msg)
		}
	}
	for _, bad := range []string{"a b", "images.example.com:99999", "[fd00::/8", "10.0.0.0/8:http"} {
		if _, err := config.FromLookup(lookup(map[string]string{"IMAGE_FETCH_ALLOW": bad})); err == nil {
			t.Errorf("IMAGE_FETCH_ALLOW=%q accepted", bad)
		}
	}
}

// URLs with the right scheme that the library using them would refuse stop
// the start too, naming the variable and hiding the password.
func TestURLsTheirLibrariesRefuse(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]string{
		"DATABASE_URL": "postgres://u:hunter2@db/x?sslmode=sometimes",
		"AMQP_URL":     "amqp://guest:hunter2@rabbit/?heartbeat=often",
		"REDIS_URL":    "redis://:hunter2@cache:6379/first",
	} {
		_, err := config.FromLookup(lookup(map[string]string{name: value}))
		if err == nil {
			t.Errorf("%s=%q accepted", name, value)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "config: "+name+"=") || !strings.Contains(msg, "not usable") ||
			strings.Contains(msg, "hunter2") || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q", name, msg)
		}
	}
}

// Load reads .env from the working directory; the environment wins over it.
func TestLoadReadsDotEnv(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("HTTP_ADDR=:7070\nOPS_TOKEN=from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	t.Setenv("OPS_TOKEN", "from-env")
	c, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":7070" || c.OpsToken != "from-env" {
		t.Errorf("HTTPAddr=%q OpsToken=%q", c.HTTPAddr, c.OpsToken)
	}
	os.Unsetenv("HTTP_ADDR") // godotenv set it in this process
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("A=\"unterminated"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(); err == nil {
		t.Error("a broken .env was accepted")
	}
}

// A RabbitMQ cluster is a comma-separated list of node URLs; every one of
// them is checked, and a bad one names the variable without its password.
func TestAMQPURLListsTheNodesOfACluster(t *testing.T) {
	t.Parallel()
	nodes := "amqp://guest:guest@10.0.0.1:5672/, amqp://guest:guest@10.0.0.2:5672/,amqp://guest:guest@10.0.0.3:5672/"
	c, err := config.FromLookup(lookup(map[string]string{"AMQP_URL": nodes}))
	if err != nil || c.AMQPURL != nodes {
		t.Fatalf("AMQP_URL=%q: %v, %q", nodes, err, c.AMQPURL)
	}
	for _, bad := range []string{
		"amqp://guest:hunter2@a/,http://guest:hunter2@b/",
		"amqp://guest:hunter2@a/,amqp://guest:hunter2@b/?heartbeat=often",
		"amqp://guest:hunter2@a/,,amqp://guest:hunter2@b/",
	} {
		_, err := config.FromLookup(lookup(map[string]string{"AMQP_URL": bad}))
		if err == nil {
			t.Errorf("AMQP_URL=%q accepted", bad)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "config: AMQP_URL=") || strings.Contains(msg, "hunter2") || strings.Contains(msg, "\n") {
			t.Errorf("AMQP_URL=%q: error %q", bad, msg)
		}
	}
}
