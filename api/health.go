package api

import (
	"context"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"
)

// healthz answers as long as the process serves HTTP.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyBody is the answer of /readyz. It names the dependencies that are
// down and nothing more: their errors carry addresses, user and database
// names, and go to the log only.
type readyBody struct {
	Status      string   `json:"status"`
	Unavailable []string `json:"unavailable,omitempty"`
	Degraded    []string `json:"degraded,omitempty"`
}

// readyz runs every readiness check at once, within Config.ReadyTimeout,
// and answers 503 when a required dependency is down.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	r := s.cfg.Checks.run(ctx)
	s.dependencyLog.record(s.cfg.Log, r)
	body := readyBody{Status: "ready", Unavailable: names(r.down), Degraded: names(r.degraded)}
	status := http.StatusOK
	if len(r.down) > 0 {
		body.Status, status = "unavailable", http.StatusServiceUnavailable
	}
	c.JSON(status, body)
}

// dependencyLog logs each dependency's changes of state, with the error
// when it goes down, so that a probe every few seconds does not repeat the
// same line for as long as an outage lasts.
type dependencyLog struct {
	mu   sync.Mutex
	down map[string]bool
}

func (l *dependencyLog) record(log *logrus.Logger, r readiness) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down == nil {
		l.down = make(map[string]bool)
	}
	now := make(map[string]bool, len(r.down)+len(r.degraded))
	for state, deps := range map[string]map[string]error{"unavailable": r.down, "degraded": r.degraded} {
		for name, err := range deps {
			now[name] = true
			if !l.down[name] {
				log.WithFields(logrus.Fields{"dependency": name, "state": state, "error": err.Error()}).Warn("readiness: dependency down")
			}
		}
	}
	for name := range l.down {
		if !now[name] {
			log.WithField("dependency", name).Info("readiness: dependency back")
		}
	}
	l.down = now
}
