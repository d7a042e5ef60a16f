package productd_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/productd/productd"
)

func TestParsePrice(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]productd.Price{
		"0": 0, "100": 10000, "100.0": 10000, "100.00": 10000, "100.5": 10050, "0.01": 1,
		"007.10": 710, "9999999999.99": productd.MaxPrice,
	} {
		got, err := productd.ParsePrice(in)
		if err != nil || got != want {
			t.Errorf("ParsePrice(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"-1": "negative", "1.001": "two decimals", "1e2": "plain decimal", "": "plain decimal",
		"1.": "plain decimal", ".5": "plain decimal", "+1": "plain decimal", "1,5": "plain decimal",
		"10000000000": "maximum", "--1": "plain decimal", "abc": "plain decimal",
	} {
		_, err := productd.ParsePrice(in)
		if productd.ErrorCode(err) != productd.EUNPROCESSABLE || !strings.Contains(productd.ErrorMessage(err), why) {
			t.Errorf("ParsePrice(%q) error = %v; want unprocessable mentioning %q", in, err, why)
		}
	}
}

func TestPriceJSONAndSQL(t *testing.T) {
	t.Parallel()
	var p struct {
		Price productd.Price `json:"p"`
	}
	if err := json.Unmarshal([]byte(`{"p":12.3}`), &p); err != nil || p.Price != 1230 {
		t.Fatalf("unmarshal = %d, %v", p.Price, err)
	}
	if err := json.Unmarshal([]byte(`{"p":-1}`), &p); err == nil {
		t.Error("negative price unmarshalled")
	}
	b, _ := json.Marshal(p)
	if string(b) != `{"p":12.30}` {
		t.Errorf("marshal = %s", b)
	}
	if s := productd.Price(-5).String(); s != "-0.05" {
		t.Errorf("String(-5) = %s", s)
	}
	v, _ := productd.Price(1230).Value()
	if v != "12.30" {
		t.Errorf("Value = %v", v)
	}
	var scanned productd.Price
	for _, src := range []any{"4.50", []byte("4.50")} {
		if err := scanned.Scan(src); err != nil || scanned != 450 {
			t.Errorf("Scan(%v) = %d, %v", src, scanned, err)
		}
	}
	if err := scanned.Scan(4.5); err == nil {
		t.Error("Scan of a float succeeded")
	}
	if err := scanned.Scan("x"); err == nil {
		t.Error("Scan of text that is no price succeeded")
	}
}
