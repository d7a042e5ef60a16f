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

// readyz runs every readiness check at once and answers 503 when any fails,
// naming each dependency with its state.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	checks := s.cfg.Checks.snapshot()
	results := make(map[string]string, len(checks))
	ready := true
	for name, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ready = false
				results[name] = err.Error()
				s.cfg.Log.WithFields(logrus.Fields{"dependency": name, "error": err.Error()}).Warn("readiness check failed")
				return
			}
			results[name] = "ok"
		}()
	}
	wg.Wait()
	status, state := http.StatusOK, "ready"
	if !ready {
		status, state = http.StatusServiceUnavailable, "unavailable"
	}
	c.JSON(status, gin.H{"status": state, "checks": results})
}
