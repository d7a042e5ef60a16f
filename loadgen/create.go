package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"strconv"
	"time"

	"github.com/productd/productd/internal/backoff"
)

// Kind is how a product was created, which says how it must end.
type Kind string

// The kinds of products.
const (
	// KindURLs has image URLs of valid images: it must end done.
	KindURLs Kind = "urls"
	// KindUpload has an uploaded valid image: it must end done.
	KindUpload Kind = "upload"
	// KindInvalid has one image URL that is no usable image: it must end
	// failed.
	KindInvalid Kind = "invalid"
)

// Want is the image status a product of this kind must end with.
func (k Kind) Want() string {
	if k == KindInvalid {
		return "failed"
	}
	return "done"
}

// Product is the record of one product of a run.
type Product struct {
	// Seq numbers the run's products from 1, in the order they were started.
	Seq  int64 `json:"seq"`
	Kind Kind  `json:"kind"`
	// ID is the product's id once its create was acknowledged (201).
	ID int64 `json:"id,omitempty"`
	// Requested is when the first attempt of its create was sent, and
	// Latency how long until the 201, retries included.
	Requested time.Time     `json:"requested"`
	Latency   time.Duration `json:"latency_ns"`
	// Attempts counts the create requests sent for it.
	Attempts int `json:"attempts"`
	// Refused says why it was never created, when it was not.
	Refused string `json:"refused,omitempty"`
	// Status and Error are its image status and error when last seen;
	// Settled is true once that status was done or failed.
	Status  string `json:"status,omitempty"`
	Error   string `json:"error,omitempty"`
	Settled bool   `json:"settled"`
	// CreatedAt and UpdatedAt are the server's timestamps when it was last
	// seen: for a settled product, UpdatedAt is when it settled.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// request is one product to create.
type request struct {
	product *Product
	body    []byte
	ctype   string
	key     string
}

// newRequest draws a product: its kind, its images, its body.
func (r *runner) newRequest(seq int64, rng *rand.Rand) (*request, error) {
	p := &Product{Seq: seq, Kind: KindURLs}
	switch x := rng.Float64(); {
	case x < r.cfg.InvalidShare:
		p.Kind = KindInvalid
	case x < r.cfg.InvalidShare+r.cfg.UploadShare:
		p.Kind = KindUpload
	}
	name := fmt.Sprintf("load %s %d", r.runID, seq)
	price := fmt.Sprintf("%d.%02d", 1+rng.IntN(500), rng.IntN(100))
	req := &request{product: p, key: fmt.Sprintf("load-%s-%d", r.runID, seq)}
	if p.Kind == KindUpload {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for field, value := range map[string]string{"user_id": strconv.FormatInt(r.userID, 10), "product_name": name, "product_price": price} {
			if err := mw.WriteField(field, value); err != nil {
				return nil, err
			}
		}
		fw, err := mw.CreateFormFile("product_images", "photo.jpg")
		if err != nil {
			return nil, err
		}
		if _, err := fw.Write(r.images.File(ImageSmall)); err != nil {
			return nil, err
		}
		if err := mw.Close(); err != nil {
			return nil, err
		}
		req.body, req.ctype = body.Bytes(), mw.FormDataContentType()
		return req, nil
	}
	var urls []string
	if p.Kind == KindInvalid {
		urls = []string{r.images.URL(invalidImages[rng.IntN(len(invalidImages))], seq)}
	} else {
		for i := range 1 + rng.IntN(r.cfg.MaxImages) {
			urls = append(urls, r.images.URL(validImages[rng.IntN(len(validImages))], seq*100+int64(i)))
		}
	}
	body, err := json.Marshal(map[string]any{
		"user_id": r.userID, "product_name": name, "product_price": json.Number(price), "product_images": urls,
	})
	if err != nil {
		return nil, err
	}
	req.body, req.ctype = body, "application/json"
	return req, nil
}

// create sends req until it is acknowledged, refused for good, or RetryFor
// has passed, and records the outcome on its product.
func (r *runner) create(ctx context.Context, req *request) {
	p := req.product
	p.Requested = time.Now()
	deadline := p.Requested.Add(r.cfg.RetryFor)
	for attempt := 1; ; attempt++ {
		p.Attempts = attempt
		id, retry, err := r.post(ctx, req)
		if err == nil {
			p.ID, p.Latency = id, time.Since(p.Requested)
			return
		}
		if !retry || time.Now().After(deadline) || ctx.Err() != nil {
			p.Refused = err.Error()
			p.Latency = time.Since(p.Requested)
			return
		}
		r.stats.retried.Add(1)
		if !backoff.Sleep(ctx, backoff.Exponential(attempt, 50*time.Millisecond, 2*time.Second)) {
			p.Refused = ctx.Err().Error()
			return
		}
	}
}

// errorBody is the API's error document.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// post sends one attempt. retry says whether a failure is worth retrying:
// no answer, a 5xx or a 429. Anything else the API refused will be refused
// again.
func (r *runner) post(ctx context.Context, req *request) (id int64, retry bool, err error) {
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.BaseURL+"/products", bytes.NewReader(req.body))
	if err != nil {
		return 0, false, err
	}
	httpReq.Header.Set("Content-Type", req.ctype)
	httpReq.Header.Set("Idempotency-Key", req.key)
	resp, err := r.cfg.Client.Do(httpReq)
	if err != nil {
		return 0, true, errors.New("no answer")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, true, errors.New("answer cut short")
	}
	if resp.StatusCode != http.StatusCreated {
		var e errorBody
		_ = json.Unmarshal(body, &e)
		retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
		return 0, retry, fmt.Errorf("%d %s", resp.StatusCode, e.Error.Code)
	}
	var created struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(body, &created); err != nil || created.ID <= 0 {
		return 0, false, fmt.Errorf("201 without a product id: %.100s", body)
	}
	return created.ID, false, nil
}
