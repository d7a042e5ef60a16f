package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"
)

// tracker holds the acknowledged products of a run until they settle.
type tracker struct {
	mu        sync.Mutex
	byID      map[int64]*Product
	unsettled map[int64]*Product
	// start is the list page the next sweep starts from: the one after the
	// last page whose products had all settled, startAfter the last id of
	// that page. Empty means the first page.
	start      string
	startAfter int64
	// resets counts the times add sent sweeps back to the first page.
	resets int
}

func newTracker() *tracker {
	return &tracker{byID: map[int64]*Product{}, unsettled: map[int64]*Product{}}
}

// add tracks an acknowledged product.
func (t *tracker) add(p *Product) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byID[p.ID] = p
	t.unsettled[p.ID] = p
	if p.ID <= t.startAfter {
		// Committed out of order, behind pages already left behind.
		t.start, t.startAfter = "", 0
		t.resets++
	}
}

// counts returns how many products are tracked and how many settled.
func (t *tracker) counts() (tracked, unsettled int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID), len(t.unsettled)
}

// listed is a product as the list shows it.
type listed struct {
	ID          int64     `json:"id"`
	ImageStatus string    `json:"image_status"`
	ImageError  string    `json:"image_error"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// sweep lists the run's products from the first page with an unsettled one
// and records what it sees. Pages come from the API's Link headers: the
// cursor is the server's business.
func (r *runner) sweep(ctx context.Context) error {
	t := r.tracker
	t.mu.Lock()
	next, resets := t.start, t.resets
	t.mu.Unlock()
	if next == "" {
		next = fmt.Sprintf("/products?user_id=%d&limit=200", r.userID)
	}
	advancing := true
	for next != "" {
		page, link, err := r.list(ctx, next)
		if err != nil {
			return err
		}
		t.mu.Lock()
		var last int64
		for _, l := range page {
			last = l.ID
			p := t.byID[l.ID]
			if p == nil {
				continue // not acknowledged yet, or not one of this run's
			}
			p.Status, p.Error, p.CreatedAt, p.UpdatedAt = l.ImageStatus, l.ImageError, l.CreatedAt, l.UpdatedAt
			if !p.Settled && (l.ImageStatus == "done" || l.ImageStatus == "failed") {
				p.Settled = true
				delete(t.unsettled, p.ID)
			}
		}
		// Later sweeps skip the pages of settled products, however many:
		// those up to this one, when nothing up to its last id is unsettled.
		advancing = advancing && link != "" && t.resets == resets && t.noneUnsettledUpTo(last)
		if advancing {
			t.start, t.startAfter = link, last
		}
		t.mu.Unlock()
		next = link
	}
	return nil
}

// noneUnsettledUpTo reports whether every product with an id up to last
// has settled. The caller holds t.mu.
func (t *tracker) noneUnsettledUpTo(last int64) bool {
	for id := range t.unsettled {
		if id <= last {
			return false
		}
	}
	return true
}

// linkNext reads the target of a Link header's rel="next".
var linkNext = regexp.MustCompile(`<([^>]+)>;\s*rel="next"`)

// list reads one page of products and the path of the next.
func (r *runner) list(ctx context.Context, path string) ([]listed, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.BaseURL+path, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("list products: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("list products: %s", resp.Status)
	}
	var page []listed
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, "", fmt.Errorf("list products: %w", err)
	}
	next := ""
	if m := linkNext.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
		if u, err := url.Parse(m[1]); err == nil {
			next = u.RequestURI()
		}
	}
	return page, next, nil
}

// follow sweeps every PollInterval until done is closed and every tracked
// product has settled, or FollowFor has passed since done was closed.
func (r *runner) follow(ctx context.Context, done <-chan struct{}) {
	var deadline <-chan time.Time
	for {
		if err := r.sweep(ctx); err != nil {
			r.stats.listErrors.Add(1)
		}
		if deadline == nil {
			select {
			case <-done:
				deadline = time.After(r.cfg.FollowFor)
			default:
			}
		}
		if _, unsettled := r.tracker.counts(); deadline != nil && unsettled == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-time.After(r.cfg.PollInterval):
		}
	}
}
