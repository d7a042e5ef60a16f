// Package logging builds the logrus logger every part of productd writes to,
// and the field names that tie its lines together.
package logging

import (
	"fmt"
	"io"

	"github.com/sirupsen/logrus"
)

// Field names shared by every log line, so that an operator can follow one
// request, product or event across the api, relay and worker.
const (
	FieldRequestID = "request_id"
	FieldProductID = "product_id"
	FieldEventID   = "event_id"
	FieldComponent = "component"
	// FieldTraceID and FieldSpanID name the OpenTelemetry trace and span a
	// line was written in (see traceHook).
	FieldTraceID = "trace_id"
	FieldSpanID  = "span_id"
)

// New returns a logger writing to out at the given level ("debug", "info",
// "warn" or "error") in the given format ("json" or "text"). A line written
// through an entry with a context (Entry.WithContext) that carries a span
// gets the span's trace_id and span_id.
func New(out io.Writer, level, format string) (*logrus.Logger, error) {
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("parse log level: %w", err)
	}
	log := logrus.New()
	log.SetOutput(out)
	log.SetLevel(lvl)
	log.AddHook(traceHook{})
	switch format {
	case "json":
		log.SetFormatter(&logrus.JSONFormatter{TimestampFormat: "2006-01-02T15:04:05.000Z07:00"})
	case "text":
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "15:04:05.000"})
	default:
		return nil, fmt.Errorf("unknown log format %q: want json or text", format)
	}
	return log, nil
}

// Discard returns a logger that writes nothing, for tests and benchmarks.
func Discard() *logrus.Logger {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return log
}
