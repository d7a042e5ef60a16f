package ops

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd/logging"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	want := Config{
		StaleAfter:    DefaultStaleAfter,
		PileUpAge:     DefaultPileUpAge,
		ParkedRefresh: DefaultParkedRefresh,
		ListLimit:     DefaultListLimit,
	}
	if diff := cmp.Diff(want, Config{}.withDefaults()); diff != "" {
		t.Errorf("Config{}.withDefaults() (-want +got):\n%s", diff)
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	t.Parallel()
	// A pool that is never connected: validate only looks at whether it is set.
	pool := new(pgxpool.Pool)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{AMQPURL: "amqp://x", Log: logging.Discard()}, "Config.Pool"},
		{Config{Pool: pool, Log: logging.Discard()}, "Config.AMQPURL"},
		{Config{Pool: pool, AMQPURL: "amqp://x", Log: logging.Discard(), StaleAfter: -time.Second}, "Config.StaleAfter"},
		{Config{Pool: pool, AMQPURL: "amqp://x", Log: logging.Discard(), ListLimit: -1}, "Config.ListLimit"},
	} {
		err := tc.cfg.withDefaults().validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}
