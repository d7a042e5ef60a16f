package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/productd/productd/config"
)

// Every form a credential takes in productd's settings stays out of the
// error that refuses the setting, whether productd or the library that
// parses the value wrote the message.
func TestCredentialsStayOutOfErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ form, name, value string }{
		{"keyword/value", "DATABASE_URL", "host=db password=hunter2 sslmode=sometimes"},
		{"keyword/value, quoted with a space", "DATABASE_URL", "host=db password = 'hun ter2' port=none"},
		{"keyword/value, quoted with an escaped quote", "DATABASE_URL", `host=db password='hun\'ter2' port=none`},
		{"keyword/value, unterminated quote", "DATABASE_URL", "host=db password='hunter2"},
		{"keyword/value, sslpassword", "DATABASE_URL", "host=db sslpassword=hunter2 sslmode=sometimes"},
		{"URL user information", "DATABASE_URL", "postgres://u:hunter2@db/x?sslmode=sometimes"},
		{"URL user information the parser refuses", "DATABASE_URL", "postgres://u:hunter2%zz@db/x"},
		{"URL user information with '@' and '/'", "DATABASE_URL", "postgres://u:hunter2/@x@db/x?sslmode=sometimes"},
		{"URL with the wrong scheme", "DATABASE_URL", "mysql://u:hunter2@db/x"},
		{"query parameter password", "DATABASE_URL", "postgres://db/x?password=hunter2&sslmode=sometimes"},
		{"query parameter sslpassword", "DATABASE_URL", "postgres://db/x?sslpassword=hunter2&sslmode=sometimes"},
		{"AMQP user information", "AMQP_URL", "amqp://guest:hunter2@rabbit/?heartbeat=often"},
		{"AMQP user information the parser refuses", "AMQP_URL", "amqp://guest:hunter2%zz@rabbit/"},
		{"AMQP with the wrong scheme", "AMQP_URL", "http://guest:hunter2@rabbit/"},
		{"AMQP cluster, second node refused", "AMQP_URL", "amqp://guest:hunter2@n1/,amqp://guest:hunter2@n2/?heartbeat=often"},
		{"Redis password only", "REDIS_URL", "redis://:hunter2@cache:6379/first"},
		{"Redis user and password", "REDIS_URL", "rediss://app:hunter2@cache:6379/0?dial_timeout=soon"},
		{"Redis query parameter", "REDIS_URL", "redis://cache:6379/0?password=hunter2&db=first"},
		{"Redis with the wrong scheme", "REDIS_URL", "memcache://:hunter2@cache"},
	} {
		_, err := config.FromLookup(lookup(map[string]string{tc.name: tc.value}))
		if err == nil {
			t.Errorf("%s: %s=%q accepted", tc.form, tc.name, tc.value)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "hunter2") || strings.Contains(msg, "hun ter2") || strings.Contains(msg, `hun\'ter2`) {
			t.Errorf("%s: the error leaks the password: %s", tc.form, msg)
		}
		if !strings.HasPrefix(msg, "config: "+tc.name+"=") || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q does not name %s on one line", tc.form, msg, tc.name)
		}
	}
}

// A keyword/value DATABASE_URL, which pgx and libpq take, is accepted.
func TestKeywordValueDatabaseURL(t *testing.T) {
	t.Parallel()
	const dsn = "host=127.0.0.1 port=5432 user=postgres password='a b' dbname=productd sslmode=disable"
	c, err := config.FromLookup(lookup(map[string]string{"DATABASE_URL": dsn}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != dsn {
		t.Errorf("DatabaseURL = %q", c.DatabaseURL)
	}
}

// A broken .env file is refused without quoting the line, which may be a
// password whose name the parser cut off.
func TestBrokenDotEnvStaysOutOfErrors(t *testing.T) {
	for _, content := range []string{
		"DATABASE_URL=\"postgres://u:hunter2@db/x\nLOG_LEVEL=info\n",
		"LOG_LEVEL=info\nPOSTGRES_PASSWORD='hunter2\n",
		"S3-SECRET-KEY hunter2\n",
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Chdir(dir)
		_, err := config.Load()
		if err == nil {
			t.Errorf(".env %q accepted", content)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "hunter2") || !strings.HasPrefix(msg, "config: read .env: ") {
			t.Errorf(".env %q: error %q", content, msg)
		}
	}
}
