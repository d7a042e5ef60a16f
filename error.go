package productd

import (
	"errors"
	"fmt"
)

// Application error codes. The HTTP layer maps each to a status; other layers
// only ever look at the code, never at the message.
const (
	ECONFLICT      = "conflict"               // the request contradicts the current state (409)
	EINTERNAL      = "internal"               // a bug or an unexpected failure (500)
	EINVALID       = "invalid"                // the request is malformed (400)
	ENOTFOUND      = "not_found"              // the entity does not exist (404)
	ETOOLARGE      = "too_large"              // the request body or a file is over its limit (413)
	EUNAVAILABLE   = "unavailable"            // a dependency is down; retrying later may work (503)
	EUNPROCESSABLE = "unprocessable"          // well-formed but breaks a rule of the domain (422)
	EUNSUPPORTED   = "unsupported_media_type" // the content type is not accepted (415)
)

// Error is an application error: a code from the list above and a message
// meant for the client. Errors that are not of this type are internal and
// their text is never shown to clients.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("productd error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an application error with the given code and a formatted
// message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first application error in err's chain,
// EINTERNAL for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first application error in err's
// chain. Other errors yield a generic message so that internal details never
// reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
