package uploads_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd"
	"github.com/productd/productd/chores"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/choretest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/internal/s3test"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/storage"
	"github.com/productd/productd/uploads"
)

var png = []byte("\x89PNG\r\n\x1a\n not really, but storage does not look")

// A request's release removes its uploads that no product claimed, and
// never one that a product's transaction did.
func TestReleaseOriginals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, objects := dbtest.NewPool(t), s3test.New(t)
	s := uploads.New(uploads.Config{}, pool, objects, logging.Discard())
	claimed, unclaimed := put(t, s), put(t, s)
	if _, err := db.NewProductService(pool).CreateProduct(ctx, &productd.Product{
		UserID: 1, Name: "Mug", Price: 1, Images: []string{claimed.URL}, Uploads: []productd.Upload{claimed},
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseOriginals(ctx, []productd.Upload{claimed, unclaimed}); err != nil {
		t.Fatal(err)
	}
	if code := s3test.Status(t, claimed.URL); code != http.StatusOK {
		t.Errorf("the claimed upload: %d", code)
	}
	if code := s3test.Status(t, unclaimed.URL); code == http.StatusOK {
		t.Errorf("the unclaimed upload still serves")
	}
	if n := rows(t, pool); n != 1 {
		t.Errorf("%d upload rows, want the claimed one", n)
	}
	if err := s.ReleaseOriginals(ctx, nil); err != nil {
		t.Errorf("releasing nothing: %v", err)
	}
}

// An upload whose file cannot be stored keeps its row while the storage
// is away, and the sweep removes it once it has been abandoned long enough.
func TestSweepRemovesAbandonedUploads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, cfg := dbtest.NewPool(t), s3test.Config(t)
	objects, err := storage.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Endpoint, cfg.MaxRetries = "127.0.0.1:1", 1
	away, err := storage.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uploads.New(uploads.Config{}, pool, away, logging.Discard()).PutOriginal(ctx, "image/png", bytes.NewReader(png), int64(len(png))); productd.ErrorCode(err) != productd.EUNAVAILABLE {
		t.Fatalf("upload with the storage away: %v, want unavailable", err)
	}
	if n := rows(t, pool); n != 1 {
		t.Fatalf("%d upload rows, want the failed one kept for the sweep", n)
	}
	if _, err := uploads.New(uploads.Config{}, pool, objects, logging.Discard()).PutOriginal(ctx, "text/plain", bytes.NewReader(png), 1); productd.ErrorCode(err) != productd.EUNSUPPORTED {
		t.Fatalf("a text upload: %v", err)
	}

	abandoned := put(t, uploads.New(uploads.Config{}, pool, objects, logging.Discard()))
	if n, err := uploads.New(uploads.Config{}, pool, objects, logging.Discard()).Sweep(ctx); n != 0 || err != nil {
		t.Fatalf("a sweep of fresh uploads removed %d, %v", n, err)
	}
	// Both were staged before this sweep started; one batch at a time.
	s := uploads.New(uploads.Config{AbandonAfter: time.Nanosecond, SweepBatch: 1}, pool, objects, logging.Discard())
	for _, want := range []int{1, 1, 0} {
		if n, err := s.Sweep(ctx); n != want || err != nil {
			t.Fatalf("sweep removed %d, %v; want %d", n, err, want)
		}
	}
	if code := s3test.Status(t, abandoned.URL); code == http.StatusOK {
		t.Error("the abandoned upload still serves")
	}
	if n := rows(t, pool); n != 0 {
		t.Errorf("%d upload rows left", n)
	}
}

func put(t *testing.T, s *uploads.Store) productd.Upload {
	t.Helper()
	u, err := s.PutOriginal(context.Background(), "image/png", bytes.NewReader(png), int64(len(png)))
	if err != nil {
		t.Fatal(err)
	}
	if code := s3test.Status(t, u.URL); code != http.StatusOK {
		t.Fatalf("GET %s: %d", u.URL, code)
	}
	return u
}

func rows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM uploads`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Registered with the chores, the sweep runs on start and removes what was
// abandoned.
func TestSweepRunsAsAChore(t *testing.T) {
	t.Parallel()
	pool, objects := dbtest.NewPool(t), s3test.New(t)
	abandoned := put(t, uploads.New(uploads.Config{}, pool, objects, logging.Discard()))
	s := uploads.New(uploads.Config{AbandonAfter: time.Nanosecond}, pool, objects, logging.Discard())
	sched := chores.New(pool, chores.Config{}, logging.Discard())
	if err := s.RegisterSweep(sched); err != nil {
		t.Fatal(err)
	}
	choretest.Run(t, sched)
	deadline := time.Now().Add(30 * time.Second)
	for rows(t, pool) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the chore never removed the abandoned upload")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := s3test.Status(t, abandoned.URL); code == http.StatusOK {
		t.Error("the abandoned upload still serves")
	}
	if err := s.RegisterSweep(sched); err == nil {
		t.Error("the sweep registered twice")
	}
}
