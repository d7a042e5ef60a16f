package cache

import (
	"bytes"
	"context"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
)

func sampleProduct() *productd.Product {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	return &productd.Product{
		ID: 42, UserID: 7, Name: `chair <"oak"> & co`, Description: "é", Price: 1050,
		Images: []string{"https://example.com/a.jpg"}, CompressedImages: []string{},
		ImageStatus: productd.ImageStatusPending, Version: 12, ImagesVersion: 11,
		CreatedAt: at, UpdatedAt: at.Add(time.Hour),
	}
}

func TestEntryRoundTrip(t *testing.T) {
	t.Parallel()
	p := sampleProduct()
	e, err := newEntry(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEntry(e.encode())
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := got.decoded()
	if err != nil || !reflect.DeepEqual(decoded, p) {
		t.Fatalf("decoded %+v, %v; want %+v", decoded, err, p)
	}
	if !bytes.Equal(got.json, e.json) {
		t.Fatalf("decoded JSON %s, want %s", got.json, e.json)
	}
}

// TestEntryJSONIsWhatGinWrites: FindProductJSONByID's bytes may replace
// c.JSON(product) only if they are the same bytes.
func TestEntryJSONIsWhatGinWrites(t *testing.T) {
	t.Parallel()
	p := sampleProduct()
	e, err := newEntry(p)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.JSON(200, p)
	if !bytes.Equal(w.Body.Bytes(), e.json) {
		t.Fatalf("gin wrote\n%s\nthe cache holds\n%s", w.Body.Bytes(), e.json)
	}
}

func TestDecodeEntryRefusesOtherValues(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"", "Tabc", "V", "V12", "V12|{}", "Vx:1|{}", "V1:y|{}", "V1:1|{not json"} {
		if _, err := decodeEntry([]byte(raw)); err == nil {
			t.Errorf("decodeEntry(%q) succeeded, want an error", raw)
		}
	}
	if !isTombstone([]byte(tombstone())) || isTombstone([]byte("V1:1|{}")) || isTombstone(nil) {
		t.Fatal("isTombstone tells tombstones from values wrongly")
	}
	if a, b := tombstone(), tombstone(); a == b {
		t.Fatalf("two tombstones are equal: %s", a)
	}
}

func TestLocalTier(t *testing.T) {
	t.Parallel()
	l := newLocalTier(100, 2)
	e, _ := newEntry(sampleProduct())
	l.put(1, e, l.snapshot(), 0)
	if l.get(1, 10) != nil {
		t.Fatal("the tier answered without a lease")
	}
	l.grant(1000, l.epoch())
	if l.get(1, 10) != e {
		t.Fatal("the tier did not answer within its lease")
	}
	if l.get(1, 100) != nil {
		t.Fatal("the tier answered with an expired entry")
	}
	// A value read before an invalidation is refused.
	seq := l.snapshot()
	l.invalidate(2)
	l.put(2, e, seq, 10)
	if l.get(2, 20) != nil {
		t.Fatal("a value read before an invalidation was kept")
	}
	// Size is capped.
	for id := int64(10); id < 20; id++ {
		l.put(id, e, l.snapshot(), 10)
	}
	if n := l.len(); n != 2 {
		t.Fatalf("tier holds %d entries, want at most 2", n)
	}
	// A renewal that began before a revocation grants nothing.
	epoch := l.epoch()
	l.revoke()
	if l.grant(1000, epoch) || l.get(10, 20) != nil || l.len() != 0 {
		t.Fatal("the tier answers after a revocation")
	}
}

func TestRedisLogger(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	log := logrus.New()
	log.SetOutput(&out)
	log.SetLevel(logrus.DebugLevel)
	RedisLogger{Log: log}.Printf(context.Background(), "dial %s: %v", "127.0.0.1:1", "refused")
	if !strings.Contains(out.String(), "dial 127.0.0.1:1: refused") || !strings.Contains(out.String(), "component=redis") {
		t.Fatalf("logged %q", out.String())
	}
}
