package logging_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/productd/productd/logging"
)

func TestJSONLogsCarryFields(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := logging.New(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.WithField(logging.FieldRequestID, "r1").WithField(logging.FieldProductID, 7).Info("created")
	log.Debug("hidden at info")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	if line["msg"] != "created" || line["request_id"] != "r1" || line["product_id"] != float64(7) || line["level"] != "info" {
		t.Errorf("line = %v", line)
	}
}

func TestTextFormatAndBadSettings(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := logging.New(&buf, "debug", "text")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("visible")
	if !strings.Contains(buf.String(), `msg=visible`) {
		t.Errorf("text line = %q", buf.String())
	}
	if _, err := logging.New(&buf, "loud", "json"); err == nil {
		t.Error("bad level accepted")
	}
	if _, err := logging.New(&buf, "info", "xml"); err == nil {
		t.Error("bad format accepted")
	}
	logging.Discard().Error("nowhere")
}
