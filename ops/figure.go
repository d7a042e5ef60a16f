package ops

import (
	"time"

	"github.com/productd/productd/outbox"
)

// Count is a number of things, with whether it is an estimate.
type Count struct {
	N        int64 `json:"n"`
	Estimate bool  `json:"estimate"`
}

func countOf(c outbox.Count) Count { return Count{N: c.N, Estimate: c.Estimate} }

// Rate is things per second over a window of WindowSeconds, with whether
// it is an estimate and where it comes from.
type Rate struct {
	PerSecond     float64 `json:"per_second"`
	WindowSeconds float64 `json:"window_seconds,omitempty"`
	Estimate      bool    `json:"estimate"`
	Source        string  `json:"source"`
}

func rateOf(r outbox.Rate, source string) Rate {
	return Rate{PerSecond: r.PerSecond, WindowSeconds: r.Window.Seconds(), Source: source}
}

// seconds is d in seconds, for JSON.
func seconds(d time.Duration) float64 { return d.Seconds() }
