package imagesweep_test

import (
	"strings"
	"testing"
	"time"

	"github.com/productd/productd/imagesweep"
	"github.com/productd/productd/logging"
)

func TestNewRefusesNegativeSettingsByName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  imagesweep.Config
		want string
	}{
		{imagesweep.Config{StuckAfter: -time.Hour}, "Config.StuckAfter"},
		{imagesweep.Config{MaxReschedules: -1}, "Config.MaxReschedules"},
	} {
		func() {
			defer func() {
				err, _ := recover().(error)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("New(%+v) panicked with %v, want an error naming %s", tc.cfg, err, tc.want)
				}
			}()
			imagesweep.New(tc.cfg, nil, nil, logging.Discard())
		}()
	}
}
