package settings_test

import (
	"fmt"
	"time"

	"github.com/productd/productd/internal/settings"
)

// A package's validate method refuses negative settings, naming the field.
func ExampleNonNegative() {
	timeout, batch := -time.Second, 100
	fmt.Println(settings.NonNegative("relay", settings.F("Batch", batch)))
	fmt.Println(settings.NonNegative("relay", settings.F("ConfirmTimeout", timeout)))
	// Output:
	// <nil>
	// relay: Config.ConfirmTimeout is -1s: it must not be negative
}
