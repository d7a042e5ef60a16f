package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	want := Config{
		ConnectionName: DefaultConnectionName,
		DialTimeout:    DefaultDialTimeout,
		Heartbeat:      DefaultHeartbeat,
		ReconnectMin:   DefaultReconnectMin,
		ReconnectMax:   DefaultReconnectMax,
		CloseTimeout:   DefaultCloseTimeout,
		RepairDelay:    DefaultRepairDelay,
	}
	if diff := cmp.Diff(want, Config{}.withDefaults()); diff != "" {
		t.Errorf("Config{}.withDefaults() (-want +got):\n%s", diff)
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Config.URL"},
		{Config{URL: "amqp://x", Heartbeat: -time.Second}, "Config.Heartbeat"},
		{Config{URL: "amqp://x", RepairDelay: -time.Second}, "Config.RepairDelay"},
	} {
		err := tc.cfg.withDefaults().validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}
