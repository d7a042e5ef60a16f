package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/productd/productd/logging"
)

func TestLinesCarryTheTraceOfTheirContext(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := logging.New(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	log.WithContext(ctx).WithField(logging.FieldProductID, 7).Info("traced")
	log.WithContext(context.Background()).Info("untraced context")
	log.Info("no context")

	dec := json.NewDecoder(&buf)
	var lines []map[string]any
	for dec.More() {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines", len(lines))
	}
	if lines[0][logging.FieldTraceID] != sc.TraceID().String() || lines[0][logging.FieldSpanID] != sc.SpanID().String() {
		t.Errorf("traced line %v", lines[0])
	}
	for _, line := range lines[1:] {
		if _, ok := line[logging.FieldTraceID]; ok {
			t.Errorf("untraced line %v has a trace id", line)
		}
	}
}
