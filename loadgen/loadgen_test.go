package loadgen

import (
	"bytes"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestImageServerServesImagesAndHoldsRequests(t *testing.T) {
	t.Parallel()
	s, err := NewImageServer("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(name string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(s.URL(name, 1))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	for _, name := range validImages {
		resp, body := get(name)
		if _, _, err := image.Decode(bytes.NewReader(body)); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s, %v", name, resp.Status, err)
		}
	}
	for _, name := range invalidImages {
		resp, body := get(name)
		if _, _, err := image.Decode(bytes.NewReader(body)); err == nil && resp.StatusCode == http.StatusOK {
			t.Errorf("%s decodes", name)
		}
	}
	if s.Served() != int64(len(validImages)+len(invalidImages)) {
		t.Errorf("served %d", s.Served())
	}

	s.Hold()
	s.Hold()
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(ImageSmall)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.InFlight()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the held request never showed in flight")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-done:
		t.Fatal("a held request was answered")
	case <-time.After(50 * time.Millisecond):
	}
	s.Release()
	<-done
	if n := len(s.InFlight()); n != 0 {
		t.Errorf("%d requests in flight after release", n)
	}
}

func TestSummariseCountsOutcomesAndGroupsReasons(t *testing.T) {
	t.Parallel()
	at := time.Now()
	products := []*Product{
		{Seq: 1, Kind: KindURLs, ID: 1, Latency: 10 * time.Millisecond, Settled: true, Status: "done", CreatedAt: at, UpdatedAt: at.Add(time.Second)},
		{Seq: 2, Kind: KindInvalid, ID: 2, Latency: 20 * time.Millisecond, Settled: true, Status: "failed",
			Error: "image 1 of 1 (http://127.0.0.1:5/img/text.jpg?n=2): the file is not an image"},
		{Seq: 3, Kind: KindURLs, ID: 3, Latency: 30 * time.Millisecond, Settled: true, Status: "failed",
			Error: "image 1 of 1 (http://127.0.0.1:5/img/small.jpg?n=3): the file is not an image"},
		{Seq: 4, Kind: KindUpload, ID: 4, Latency: 40 * time.Millisecond},
		{Seq: 5, Kind: KindURLs, Refused: "503 unavailable"},
	}
	r := summarise(products, 2*time.Second, 3, true)
	if r.Started != 5 || r.Created != 4 || r.Refused != 1 || r.Done != 1 || r.Failed != 2 || r.Unsettled != 1 || r.WrongOutcome != 1 || r.OK() {
		t.Errorf("report %+v", r)
	}
	if r.Failures["image: image 1 of 1: the file is not an image"] != 2 || r.Failures["create: 503 unavailable"] != 1 {
		t.Errorf("failures %v", r.Failures)
	}
	if r.CreateLatency.N != 4 || r.CreateLatency.Max != 40*time.Millisecond || r.CreateToDone.P50 != time.Second || r.CreatedPerSecond != 2 {
		t.Errorf("latencies %+v %+v %v", r.CreateLatency, r.CreateToDone, r.CreatedPerSecond)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil || !strings.Contains(text.String(), "1 refused") || !strings.Contains(text.String(), "p50 30ms") {
		t.Errorf("text: %v\n%s", err, text.String())
	}
	if p := percentiles(nil); p.String() != "-" {
		t.Errorf("no durations: %q", p)
	}
}

func TestConfigRefusesWhatItCannotRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Config.BaseURL"},
		{Config{BaseURL: "http://x", Rate: -1}, "Config.Rate"},
		{Config{BaseURL: "http://x", UploadShare: 0.6, InvalidShare: 0.6}, "Config.UploadShare"},
		{Config{BaseURL: "http://x", FollowFor: -time.Second}, "Config.FollowFor"},
	} {
		if err := tc.cfg.withDefaults().validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	if err := (Config{BaseURL: "http://x", UploadShare: -1, InvalidShare: -1}).withDefaults().validate(); err != nil {
		t.Errorf("no uploads nor invalid images: %v", err)
	}
}
