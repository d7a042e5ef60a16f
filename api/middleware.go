package api

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/netip"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/logging"
)

// Context keys set by the middleware and the handlers.
const (
	requestIDKey = "request_id"
	productIDKey = "product_id"
)

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-ID"

// requestID takes the client's X-Request-ID when it is a sane token, or
// makes one, and echoes it in the response so both sides log the same id.
func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !validRequestID(id) {
			var b [12]byte
			_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
			id = hex.EncodeToString(b[:])
		}
		c.Set(requestIDKey, id)
		c.Header(RequestIDHeader, id)
		c.Next()
	}
}

// validRequestID accepts up to 128 visible ASCII characters, so that a
// client's id cannot forge log lines or bloat them.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// accessLog writes one line per request once it is answered.
func accessLog(log *logrus.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		fields := logrus.Fields{
			logging.FieldRequestID: c.GetString(requestIDKey),
			"method":               c.Request.Method,
			"route":                c.FullPath(),
			"path":                 c.Request.URL.Path,
			"status":               status,
			"duration_ms":          float64(time.Since(start).Microseconds()) / 1000,
			"bytes":                c.Writer.Size(),
			"client_ip":            clientIPField(ClientAddr(c)),
		}
		if id, ok := c.Get(productIDKey); ok {
			fields[logging.FieldProductID] = id
		}
		entry := log.WithContext(c.Request.Context()).WithFields(fields)
		switch {
		case status >= http.StatusInternalServerError:
			entry.Error("request")
		case status >= http.StatusBadRequest:
			entry.Warn("request")
		default:
			entry.Info("request")
		}
	}
}

// clientIPField is how the access log shows a client address; a trusted
// proxy that named no client leaves it unknown.
func clientIPField(addr netip.Addr) string {
	if !addr.IsValid() {
		return "unknown"
	}
	return addr.String()
}

// recovery turns a panic into a logged 500 with the JSON error body.
func recovery(log *logrus.Logger) gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, recovered any) {
		log.WithContext(c.Request.Context()).WithFields(logrus.Fields{
			logging.FieldRequestID: c.GetString(requestIDKey),
			"route":                c.FullPath(),
			"panic":                recovered,
		}).Error("handler panicked")
		writeError(c, http.StatusInternalServerError, "internal", "Internal error.")
	})
}
