package settings_test

import (
	"testing"
	"time"

	"github.com/productd/productd/internal/settings"
)

func TestNonNegative(t *testing.T) {
	t.Parallel()
	if err := settings.NonNegative("p", settings.F("A", 0), settings.F("B", 3)); err != nil {
		t.Fatalf("zero and positive values refused: %v", err)
	}
	err := settings.NonNegative("cache", settings.F("TTL", time.Minute), settings.F("Timeout", -time.Second), settings.F("LoadTimeout", -time.Minute))
	if want := "cache: Config.Timeout is -1s: it must not be negative"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}
