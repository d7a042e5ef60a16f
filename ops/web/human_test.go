package web

import (
	"testing"
	"time"
)

func TestHumanDurations(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		-time.Second:                  "0 ms",
		250 * time.Millisecond:        "250 ms",
		12500 * time.Millisecond:      "12.5 s",
		3*time.Minute + 7*time.Second: "3m07s",
		5*time.Hour + 4*time.Minute:   "5h04m",
		3 * 24 * time.Hour:            "3d",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
	if rateDigits(0.5) != 2 || rateDigits(12) != 0 || rateDigits(0) != 0 {
		t.Error("rateDigits")
	}
}
