package uploads_test

import (
	"strings"
	"testing"
	"time"

	"github.com/productd/productd/logging"
	"github.com/productd/productd/uploads"
)

func TestNewRefusesNegativeSettingsByName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  uploads.Config
		want string
	}{
		{uploads.Config{AbandonAfter: -time.Hour}, "Config.AbandonAfter"},
		{uploads.Config{SweepBatch: -1}, "Config.SweepBatch"},
	} {
		func() {
			defer func() {
				err, _ := recover().(error)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("New(%+v) panicked with %v, want an error naming %s", tc.cfg, err, tc.want)
				}
			}()
			uploads.New(tc.cfg, nil, nil, logging.Discard())
		}()
	}
}
