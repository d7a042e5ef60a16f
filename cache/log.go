package cache

import (
	"context"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/productd/productd/logging"
)

// RedisLogger hands go-redis's own messages (failed dials, reconnects) to
// logrus at debug level, for redis.SetLogger: the breaker already logs each
// outage once, with its error, at warning level.
type RedisLogger struct {
	Log *logrus.Logger
}

// Printf implements go-redis's internal.Logging.
func (l RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.Log.WithField(logging.FieldComponent, "redis").Debug(fmt.Sprintf(format, v...))
}
