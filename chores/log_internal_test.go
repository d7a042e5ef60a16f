package chores

import (
	"log/slog"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestRiverLevel(t *testing.T) {
	t.Parallel()
	for in, want := range map[slog.Level]logrus.Level{
		slog.LevelDebug: logrus.DebugLevel,
		slog.LevelInfo:  logrus.DebugLevel, // River's routine
		slog.LevelWarn:  logrus.WarnLevel,
		slog.LevelError: logrus.ErrorLevel,
	} {
		if got := riverLevel(in); got != want {
			t.Errorf("riverLevel(%v) = %v, want %v", in, got, want)
		}
	}
}
