package outbox_test

import (
	"strings"
	"testing"
	"time"

	"github.com/productd/productd/outbox"
)

func TestNewNotifierRefusesNegativeSettingsByName(t *testing.T) {
	t.Parallel()
	defer func() {
		err, _ := recover().(error)
		if err == nil || !strings.Contains(err.Error(), "Config.Timeout") {
			t.Errorf("NewNotifier with a negative Timeout panicked with %v, want an error naming Config.Timeout", err)
		}
	}()
	outbox.NewNotifier(nil, outbox.NotifierConfig{Timeout: -time.Second})
}
