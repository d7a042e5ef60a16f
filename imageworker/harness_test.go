package imageworker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/internal/imagetest"
	"github.com/productd/productd/internal/s3test"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/storage"
)

// waitFor bounds every wait of these tests; reaching it fails the test.
const waitFor = 30 * time.Second

// harness is one test's world: a database, a bucket, a RabbitMQ topology
// with short retry delays, a server of image fixtures, and the outcomes of
// the workers' deliveries.
type harness struct {
	t        testing.TB
	pool     *pgxpool.Pool
	products *db.ProductService
	storeCfg storage.Config
	store    *storage.Store
	topo     broker.Topology
	pub      *broker.Publisher
	images   *httptest.Server

	mu       sync.Mutex
	outcomes map[string][]string // by event id
	changed  chan struct{}
	files    map[string][]byte // served under /files/
}

func newHarness(t testing.TB, retryDelays ...time.Duration) *harness {
	t.Helper()
	if len(retryDelays) == 0 {
		retryDelays = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	}
	pool := dbtest.NewPool(t)
	storeCfg := s3test.Config(t)
	store, err := storage.New(storeCfg)
	if err != nil {
		t.Fatal(err)
	}
	b := amqptest.NewBroker(t, broker.Config{Topology: broker.Topology{Prefix: amqptest.Prefix(t), RetryDelays: retryDelays}}, logging.Discard())
	pub := b.NewPublisher(0)
	t.Cleanup(func() { pub.Close() })
	h := &harness{
		t: t, pool: pool, products: db.NewProductService(pool), storeCfg: storeCfg, store: store,
		topo: b.Topology(), pub: pub, outcomes: map[string][]string{}, changed: make(chan struct{}), files: map[string][]byte{},
	}
	h.images = httptest.NewServer(http.HandlerFunc(h.serveImage))
	t.Cleanup(h.images.Close)
	return h
}

// serveImage serves fixtures under /img/, and a few misbehaving paths.
func (h *harness) serveImage(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/img/"):
		b, err := os.ReadFile(filepath.Join(imagetest.Dir(), path.Base(r.URL.Path)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	case strings.HasPrefix(r.URL.Path, "/files/"):
		h.mu.Lock()
		b, ok := h.files[path.Base(r.URL.Path)]
		h.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	case r.URL.Path == "/slow.jpg":
		time.Sleep(400 * time.Millisecond)
		http.ServeFile(w, r, filepath.Join(imagetest.Dir(), "photo.jpg"))
	case r.URL.Path == "/hang.jpg":
		<-r.Context().Done()
	default:
		http.NotFound(w, r)
	}
}

// serve makes the test server serve data under name and returns its URL.
func (h *harness) serve(name string, data []byte) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.files[name] = data
	return h.images.URL + "/files/" + name
}

// url returns the test server's URL of a fixture.
func (h *harness) url(name string) string { return h.images.URL + "/img/" + name }

// testConfig is the worker configuration of these tests: a small box, the
// fixture server allowed through the SSRF guard, and a fetch timeout long
// enough never to expire on a busy machine unless a test wants it to.
func testConfig() Config {
	return Config{MaxSide: 256, FetchAllow: []string{"127.0.0.1:*"}, FetchTimeout: 10 * time.Second, Concurrency: 2}
}

// worker is a running worker with its own broker connection.
type worker struct {
	*Worker
	broker *broker.Broker
	cancel context.CancelFunc
	done   chan error
}

// start runs a worker on the harness's topology, storing through store
// (nil: the harness's). It is stopped when the test ends.
func (h *harness) start(cfg Config, store *storage.Store, hk hooks) *worker {
	h.t.Helper()
	return h.run(cfg, h.products, store, hk)
}

// run is start writing through products.
func (h *harness) run(cfg Config, products productd.ProductService, store *storage.Store, hk hooks) *worker {
	h.t.Helper()
	if store == nil {
		store = h.store
	}
	b := amqptest.NewBroker(h.t, broker.Config{Topology: h.topo}, logging.Discard())
	w, err := New(cfg, products, store, b, logging.Discard())
	if err != nil {
		h.t.Fatal(err)
	}
	settled := hk.settled
	hk.settled = func(ev productd.Event, outcome string) {
		h.record(ev.ID, outcome)
		if settled != nil {
			settled(ev, outcome)
		}
	}
	w.hooks = hk
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{Worker: w, broker: b, cancel: cancel, done: make(chan error, 1)}
	go func() { wk.done <- w.Run(ctx) }()
	h.t.Cleanup(func() { wk.stop() })
	return wk
}

// stop cancels the worker's context and waits for Run to return.
func (w *worker) stop() error {
	w.cancel()
	select {
	case err := <-w.done:
		w.done <- err // for a second stop
		return err
	case <-time.After(waitFor):
		return errors.New("the worker did not stop")
	}
}

func (h *harness) record(eventID, outcome string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.outcomes[eventID] = append(h.outcomes[eventID], outcome)
	close(h.changed)
	h.changed = make(chan struct{})
}

// waitOutcomes waits until the deliveries of eventID have settled n times
// and returns their outcomes in order.
func (h *harness) waitOutcomes(eventID string, n int) []string {
	h.t.Helper()
	deadline := time.After(waitFor)
	for {
		h.mu.Lock()
		got, changed := append([]string(nil), h.outcomes[eventID]...), h.changed
		h.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			h.t.Fatalf("event %s settled %d times (%v), want %d", eventID, len(got), got, n)
		}
	}
}

// outcome waits for the first settlement of eventID and returns it.
func (h *harness) outcome(eventID string) string {
	h.t.Helper()
	return h.waitOutcomes(eventID, 1)[0]
}

// create stores a product with images and returns it with its created event.
func (h *harness) create(images ...string) (*productd.Product, productd.Event) {
	h.t.Helper()
	c, err := h.products.CreateProduct(context.Background(), &productd.Product{UserID: 1, Name: "Mug", Price: 1000, Images: images}, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return c.Product, h.lastEvent(c.Product.ID)
}

// lastEvent reads the newest outbox event of a product, as the relay would
// publish it.
func (h *harness) lastEvent(productID int64) productd.Event {
	h.t.Helper()
	var payload []byte
	err := h.pool.QueryRow(context.Background(), `SELECT payload FROM outbox WHERE product_id = $1 ORDER BY id DESC LIMIT 1`, productID).Scan(&payload)
	if err != nil {
		h.t.Fatalf("read outbox: %v", err)
	}
	var ev productd.Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		h.t.Fatal(err)
	}
	return ev
}

// publish sends ev to the events exchange as the relay does.
func (h *harness) publish(ev productd.Event, headers amqp.Table) {
	h.t.Helper()
	body, err := json.Marshal(ev)
	if err != nil {
		h.t.Fatal(err)
	}
	h.publishRaw(string(ev.Type), ev.ID, body, headers)
}

func (h *harness) publishRaw(key, id string, body []byte, headers amqp.Table) {
	h.t.Helper()
	res := h.pub.Publish(context.Background(), []broker.Message{{
		Exchange: h.topo.Exchange, RoutingKey: key,
		Publishing: amqp.Publishing{MessageId: id, ContentType: "application/json", Body: body, Headers: headers},
	}})
	if !res[0].Published() {
		h.t.Fatalf("publish: %v", res[0].Err)
	}
}

// waitStatus polls the product until its image status is one of want.
func (h *harness) waitStatus(id int64, want ...productd.ImageStatus) *productd.Product {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		p, err := h.products.FindProductByID(context.Background(), id)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, s := range want {
			if p.ImageStatus == s {
				return p
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("product %d is %s (%q) after %v, want %v", id, p.ImageStatus, p.ImageError, waitFor, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keys lists the compressed objects of a product.
func (h *harness) keys(productID int64) []string {
	h.t.Helper()
	keys, err := h.store.List(context.Background(), storage.ProductPrefix(productID))
	if err != nil {
		h.t.Fatal(err)
	}
	return keys
}

// download fetches a public URL anonymously, as a browser would, and
// decodes it.
func download(t *testing.T, url string) (image.Image, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	var img image.Image
	switch ct := resp.Header.Get("Content-Type"); ct {
	case "image/jpeg":
		img, err = jpeg.Decode(bytes.NewReader(body))
	case "image/png":
		img, err = png.Decode(bytes.NewReader(body))
	default:
		t.Fatalf("GET %s: Content-Type %q", url, ct)
	}
	if err != nil {
		t.Fatalf("GET %s: not a valid image: %v", url, err)
	}
	return img, body
}
