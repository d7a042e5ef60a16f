package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI answers the creates of a run by the product's sequence number in
// its name, and lists the products it acknowledged as done, two to a page.
type fakeAPI struct {
	mu       sync.Mutex
	attempts map[int64][]string // Idempotency-Keys of each product's creates
	created  []int64            // ids acknowledged, in order
	lists    int
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodGet {
		f.lists++
		if f.lists == 1 {
			http.Error(w, `{"error":{"code":"unavailable"}}`, http.StatusServiceUnavailable)
			return
		}
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		ids := slices.Sorted(slices.Values(f.created))
		var page []map[string]any
		for _, id := range ids {
			if id > after && len(page) < 2 {
				page = append(page, map[string]any{"id": id, "image_status": "done", "created_at": time.Now(), "updated_at": time.Now()})
			}
		}
		if len(page) == 2 && page[1]["id"].(int64) < ids[len(ids)-1] {
			w.Header().Set("Link", fmt.Sprintf(`<http://%s/products?user_id=%s&limit=2&after=%d>; rel="next"`,
				r.Host, r.URL.Query().Get("user_id"), page[1]["id"]))
		}
		_ = json.NewEncoder(w).Encode(page)
		return
	}
	var body struct {
		Name string `json:"product_name"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	seq, _ := strconv.ParseInt(body.Name[strings.LastIndex(body.Name, " ")+1:], 10, 64)
	f.attempts[seq] = append(f.attempts[seq], r.Header.Get("Idempotency-Key"))
	switch n := len(f.attempts[seq]); {
	case seq == 1 && n == 1:
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":{"code":"internal"}}`))
	case seq == 2:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"code":"invalid","message":"product_price: must be positive"}}`))
	case seq == 3:
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{}`))
	case seq == 4 && n == 1:
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":{"code":"unavailable"}}`))
	default:
		f.created = append(f.created, seq*10)
		w.WriteHeader(http.StatusCreated)
		_, _ = fmt.Fprintf(w, `{"id":%d}`, seq*10)
	}
}

// sharedImages is one image server for the tests that do not test it:
// drawing its images takes seconds under the race detector.
var sharedImages = sync.OnceValues(func() (*ImageServer, error) { return NewImageServer("") })

func images(t *testing.T) *ImageServer {
	t.Helper()
	s, err := sharedImages()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// syncBuffer is a bytes.Buffer the progress goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A 5xx or 429 is retried with the same Idempotency-Key; any other refusal,
// or a 201 without an id, counts the product as refused at once. A list
// that fails is retried on the next sweep, and counted.
func TestRefusalsRetriesAndListErrors(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{attempts: map[int64][]string{}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	var progress syncBuffer
	rep, err := Run(context.Background(), Config{
		BaseURL: srv.URL, Count: 6, UploadShare: -1, InvalidShare: -1,
		PollInterval: time.Millisecond, FollowFor: 10 * time.Second, RetryFor: 10 * time.Second,
		Progress: &progress, Images: images(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Started != 6 || rep.Created != 4 || rep.Refused != 2 || rep.Retries != 2 || rep.Done != 4 || rep.Unsettled != 0 {
		t.Errorf("report %+v: want 6 started, 4 created and done, 2 refused, 2 retries", rep)
	}
	for _, reason := range []string{"create: 400 invalid", "create: 201 without a product id: {}"} {
		if rep.Failures[reason] != 1 {
			t.Errorf("failures %v: want one %q", rep.Failures, reason)
		}
	}
	api.mu.Lock()
	for seq, keys := range api.attempts {
		want := map[int64]int{1: 2, 4: 2}[seq]
		if want == 0 {
			want = 1
		}
		if len(keys) != want || keys[0] != keys[len(keys)-1] {
			t.Errorf("product %d: creates sent with keys %v, want %d with one key", seq, keys, want)
		}
	}
	api.mu.Unlock()
	if out := progress.String(); !strings.Contains(out, "list errors 1") || !strings.Contains(out, "refused 2") {
		t.Errorf("progress %q: want the refusals and the failed list", out)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "400 invalid") {
		t.Errorf("report text %q (%v): want the refusal's reason", text.String(), err)
	}
}

// A create that gets no answer is retried until RetryFor has passed; an API
// that cannot be listed leaves the products unsettled when FollowFor ends.
func TestAPIAwayRefusesAfterRetryFor(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens at its address any more
	rep, err := Run(context.Background(), Config{
		BaseURL: srv.URL, Count: 2, UploadShare: -1, InvalidShare: -1, Images: images(t),
		RetryFor: 100 * time.Millisecond, FollowFor: time.Millisecond, PollInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Refused != 2 || rep.Failures["create: no answer"] != 2 || rep.Retries == 0 || rep.OK() {
		t.Errorf("report %+v: want both products refused with no answer after retries", rep)
	}
}

// A context that ends stops the creating, bounded by Duration or not, and a
// create's retries at once. The second product is due in 1,000 s: only the
// end of the context stops the run before it.
func TestDurationAndContextEndTheRun(t *testing.T) {
	t.Parallel()
	var posts sync.WaitGroup
	posts.Add(1)
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(posts.Done)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		posts.Wait()
		cancel()
	}()
	rep, err := Run(ctx, Config{
		BaseURL: srv.URL, Duration: time.Minute, Rate: 0.001, UploadShare: -1, InvalidShare: -1, Images: images(t),
		FollowFor: time.Millisecond, PollInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Started != 1 || rep.Refused != 1 || rep.Created != 0 {
		t.Errorf("report %+v: want the one product started refused when the context ended", rep)
	}
}

// A product that never settles is counted unsettled once FollowFor has
// passed; a list that is not JSON is a list error, tried again.
func TestUnsettledAfterFollowFor(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	lists := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":5}`))
			return
		}
		mu.Lock()
		lists++
		first := lists == 1
		mu.Unlock()
		if first {
			_, _ = w.Write([]byte("<html>not a list</html>"))
			return
		}
		_, _ = w.Write([]byte(`[{"id":5,"image_status":"processing"}]`))
	}))
	defer srv.Close()
	var progress syncBuffer
	rep, err := Run(context.Background(), Config{
		BaseURL: srv.URL, Count: 1, UploadShare: -1, InvalidShare: -1, Images: images(t),
		FollowFor: 100 * time.Millisecond, PollInterval: time.Millisecond, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created != 1 || rep.Unsettled != 1 || rep.OK() {
		t.Errorf("report %+v: want the one product created and unsettled", rep)
	}
	if !strings.Contains(progress.String(), "list errors 1") {
		t.Errorf("progress %q: want the list that was not JSON counted", progress.String())
	}
}

func TestImageServerRefusesAnAddressItCannotListenOn(t *testing.T) {
	t.Parallel()
	if _, err := NewImageServer("127.0.0.1:99999"); err == nil || !strings.Contains(err.Error(), "image server: listen on 127.0.0.1:99999") {
		t.Errorf("an impossible port: %v, want a refusal naming the address", err)
	}
}
