package cache_test

import (
	"os"
	"testing"

	"github.com/productd/productd/internal/exampletest"
)

// ex is the examples' testing.TB: what they create goes when the tests end.
var ex exampletest.TB

func TestMain(m *testing.M) { os.Exit(ex.Run(m)) }
