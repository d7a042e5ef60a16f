package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd/audit"
)

func TestRunRefusesNegativeSettingsByName(t *testing.T) {
	t.Parallel()
	// Run refuses the settings before it touches the pool.
	pool := new(pgxpool.Pool)
	for _, tc := range []struct {
		cfg  audit.Config
		want string
	}{
		{audit.Config{DB: pool, StuckAfter: -time.Minute}, "Config.StuckAfter"},
		{audit.Config{DB: pool, MaxFindings: -1}, "Config.MaxFindings"},
	} {
		if _, err := audit.Run(context.Background(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}
