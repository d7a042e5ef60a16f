package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
	"github.com/productd/productd/logging"
)

// statusOf maps application error codes to HTTP statuses.
var statusOf = map[string]int{
	productd.ECONFLICT:      http.StatusConflict,
	productd.EINTERNAL:      http.StatusInternalServerError,
	productd.EINVALID:       http.StatusBadRequest,
	productd.ENOTFOUND:      http.StatusNotFound,
	productd.ETOOLARGE:      http.StatusRequestEntityTooLarge,
	productd.EUNAVAILABLE:   http.StatusServiceUnavailable,
	productd.EUNPROCESSABLE: http.StatusUnprocessableEntity,
	productd.EUNSUPPORTED:   http.StatusUnsupportedMediaType,
}

// ErrorStatus returns the HTTP status for err's application error code.
func ErrorStatus(err error) int {
	if status, ok := statusOf[productd.ErrorCode(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// error writes err as a JSON error response. Internal errors and outages are
// logged with the request id; their details never reach the client.
func (s *Server) error(c *gin.Context, err error) {
	code, status := productd.ErrorCode(err), ErrorStatus(err)
	if status >= http.StatusInternalServerError {
		s.cfg.Log.WithContext(c.Request.Context()).WithFields(logrus.Fields{
			logging.FieldRequestID: c.GetString(requestIDKey),
			"route":                c.FullPath(),
			"error":                err.Error(),
		}).Error("request failed")
	}
	if status == http.StatusServiceUnavailable {
		c.Header("Retry-After", "1")
	}
	writeError(c, status, code, productd.ErrorMessage(err))
}

func writeError(c *gin.Context, status int, code, message string) {
	c.AbortWithStatusJSON(status, errorBody{Error: errorDetail{Code: code, Message: message}})
}
