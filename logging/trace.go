package logging

import (
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"
)

// traceHook adds the trace and span ids of the span in an entry's context,
// so that a log line leads to its trace and a trace to its log lines.
type traceHook struct{}

func (traceHook) Levels() []logrus.Level { return logrus.AllLevels }

func (traceHook) Fire(e *logrus.Entry) error {
	if e.Context == nil {
		return nil
	}
	sc := trace.SpanContextFromContext(e.Context)
	if !sc.IsValid() {
		return nil
	}
	e.Data[FieldTraceID] = sc.TraceID().String()
	e.Data[FieldSpanID] = sc.SpanID().String()
	return nil
}
