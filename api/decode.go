package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/productd/productd"
)

// Body kinds a write request may carry.
const (
	bodyJSON      = "json"
	bodyMultipart = "multipart"
)

// bodyKind tells JSON from multipart by Content-Type. The seed service never
// looked at the type, and its clients send JSON with none, or with the
// form type that `curl -d` sets: those are read as JSON too, so they keep
// working unchanged. Any other type is refused.
func bodyKind(r *http.Request) (string, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return bodyJSON, nil
	}
	mediaType, _, err := mime.ParseMediaType(ct)
	switch {
	case err != nil:
		return "", productd.Errorf(productd.EUNSUPPORTED, "Content-Type %q cannot be parsed", ct)
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"),
		mediaType == "application/x-www-form-urlencoded", mediaType == "text/plain":
		return bodyJSON, nil
	case mediaType == "multipart/form-data":
		return bodyMultipart, nil
	}
	return "", productd.Errorf(productd.EUNSUPPORTED, "Content-Type %q is not supported; send application/json or multipart/form-data", mediaType)
}

// readBody reads at most limit bytes of the request body; a longer body is an
// ETOOLARGE error, an empty one EINVALID.
func readBody(c *gin.Context, limit int64) ([]byte, error) {
	if c.Request.ContentLength > limit {
		return nil, bodyTooLarge(limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, bodyTooLarge(limit)
	} else if err != nil {
		return nil, productd.Errorf(productd.EINVALID, "read request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, productd.Errorf(productd.EINVALID, "request body is empty")
	}
	return body, nil
}

// bodyTooLarge is the error of every request body over its limit.
func bodyTooLarge(limit int64) error {
	return productd.Errorf(productd.ETOOLARGE, "request body is over the limit of %d bytes", limit)
}

// decodeStrict decodes one JSON value from body into v, refusing unknown
// fields and trailing data, and turns decoder errors into messages a client
// can act on.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return productd.Errorf(productd.EINVALID, "request body has data after the JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var appErr *productd.Error
	switch {
	case errors.As(err, &appErr):
		return appErr
	case errors.As(err, &syntaxErr):
		return productd.Errorf(productd.EINVALID, "malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return productd.Errorf(productd.EINVALID, "request body must be a JSON object")
		}
		return productd.Errorf(productd.EINVALID, "%s must be %s, not %s", typeErr.Field, jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return productd.Errorf(productd.EINVALID, "malformed JSON: unexpected end of input")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return productd.Errorf(productd.EINVALID, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return productd.Errorf(productd.EINVALID, "malformed JSON: %v", err)
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	}
	return "a " + kind
}

// priceField holds product_price as the client wrote it. It accepts only a
// JSON number, so that a string or a bool is a type error (400), while a
// number breaking a price rule is a validation error (422).
type priceField struct{ raw string }

func (p *priceField) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return productd.Errorf(productd.EINVALID, "product_price must be a number, not %s", jsonKind(b))
	}
	p.raw = string(b)
	return nil
}

// jsonKind names the kind of a raw JSON value for error messages.
func jsonKind(b []byte) string {
	switch {
	case len(b) == 0:
		return "nothing"
	case b[0] == '"':
		return "a string"
	case b[0] == '{':
		return "an object"
	case b[0] == '[':
		return "an array"
	case b[0] == 't' || b[0] == 'f':
		return "a boolean"
	case b[0] == 'n':
		return "null"
	}
	return fmt.Sprintf("%q", b)
}
