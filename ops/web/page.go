package web

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/errgroup"

	"github.com/productd/productd"
	"github.com/productd/productd/ops"
)

// pageData is what the page template renders.
type pageData struct {
	ops.Overview
	Filter      ops.DeadFilter
	Before      int64
	Story       *ops.Story
	StoryError  string
	ProductID   string
	Flash       string
	Error       string
	Refresh     int
	RiverUI     bool
	Actor       string
	Took        time.Duration
	FilterQuery string
	// Back is the page's query without its flash, where a form's action
	// sends the browser back to.
	Back string
}

// showPage renders the console. The query selects the dead rows shown
// (event_type, product_id, error, before) and a product's story (product).
func (h *handler) showPage(c *gin.Context) {
	start := time.Now()
	ctx := c.Request.Context()
	f, before, err := deadQuery(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	d := pageData{
		Filter: f, Before: before, ProductID: c.Query("product"), Flash: c.Query("flash"), Error: c.Query("error"),
		Refresh: h.cfg.RefreshSeconds, RiverUI: h.cfg.RiverUI != nil, Actor: actor(c),
	}
	filtered := !f.IsZero() || before > 0
	var dead ops.DeadPage
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { d.Overview, err = h.cfg.Console.Overview(gctx); return })
	if filtered {
		g.Go(func() (err error) { dead, err = h.cfg.Console.Dead(gctx, f, before); return })
	}
	if d.ProductID != "" {
		g.Go(func() error { d.Story, d.StoryError = h.story(gctx, d.ProductID); return nil })
	}
	if err := g.Wait(); err != nil {
		h.fail(c, err)
		return
	}
	if filtered {
		d.Dead = dead
	}
	d.FilterQuery = filterQuery(f)
	back := c.Request.URL.Query()
	back.Del("flash")
	back.Del("error")
	d.Back = back.Encode()
	d.Took = time.Since(start)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	c.Header("Content-Type", "text/html; charset=utf-8")
	if err := h.page.ExecuteTemplate(c.Writer, "page.tmpl", d); err != nil {
		h.log.WithError(err).Error("ops: render the page")
	}
}

func (h *handler) story(ctx context.Context, raw string) (*ops.Story, string) {
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return nil, fmt.Sprintf("%q is not a product id", raw)
	}
	s, err := h.cfg.Console.Product(ctx, id)
	if err != nil {
		return nil, productd.ErrorMessage(err)
	}
	return &s, ""
}

func filterQuery(f ops.DeadFilter) string {
	v := url.Values{}
	if f.EventType != "" {
		v.Set("event_type", f.EventType)
	}
	if f.ProductID != 0 {
		v.Set("product_id", strconv.FormatInt(f.ProductID, 10))
	}
	if f.ErrorContains != "" {
		v.Set("error", f.ErrorContains)
	}
	return v.Encode()
}

// formAction runs an action posted by one of the page's forms, then sends
// the browser back to the page (with the query it came from) with what
// happened.
func (h *handler) formAction(c *gin.Context) {
	ctx := c.Request.Context()
	who := actor(c)
	form := func(name string) string { return c.PostForm(name) }
	id, _ := strconv.ParseInt(form("id"), 10, 64)
	var msg string
	var err error
	switch c.Param("action") {
	case "requeue":
		err = h.cfg.Console.RequeueDead(ctx, who, id)
		msg = fmt.Sprintf("Requeued outbox row %d.", id)
	case "discard":
		err = h.cfg.Console.DiscardDead(ctx, who, id)
		msg = fmt.Sprintf("Discarded outbox row %d.", id)
	case "requeue-matching":
		var f ops.DeadFilter
		if f, err = filterOf(c); err == nil {
			var n int64
			n, err = h.cfg.Console.RequeueDeadMatching(ctx, who, f)
			msg = fmt.Sprintf("Requeued %d dead rows.", n)
		}
	case "pause":
		if form("reason") == "" {
			err = productd.Errorf(productd.EINVALID, "Say why the relay is paused.")
		} else {
			err = h.cfg.Console.PauseRelay(ctx, who, form("reason"))
			msg = "Relay paused."
		}
	case "resume":
		err = h.cfg.Console.ResumeRelay(ctx, who, form("reason"))
		msg = "Relay resumed."
	case "rerun":
		err = h.cfg.Console.RerunImages(ctx, who, id, "re-run from the ops console")
		msg = fmt.Sprintf("Re-running the images of product %d.", id)
	case "replay":
		var n int
		n, err = h.cfg.Console.ReplayParking(ctx, who, DefaultReplayLimit)
		msg = fmt.Sprintf("Replayed %d parked messages.", n)
	default:
		h.fail(c, productd.Errorf(productd.ENOTFOUND, "no action %q", c.Param("action")))
		return
	}
	back, _ := url.ParseQuery(form("back"))
	back.Del("flash")
	back.Del("error")
	if err != nil {
		back.Set("error", productd.ErrorMessage(err))
	} else {
		back.Set("flash", msg)
	}
	c.Redirect(http.StatusSeeOther, PagePath+"?"+back.Encode())
}

// funcs are the template's helpers.
var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return human(time.Since(t)) + " ago"
	},
	"agop": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return human(time.Since(*t)) + " ago"
	},
	"secs": func(s float64) string { return human(time.Duration(s * float64(time.Second))) },
	"secsp": func(s *float64) string {
		if s == nil {
			return "—"
		}
		return human(time.Duration(*s * float64(time.Second)))
	},
	"count": func(c ops.Count) string {
		if c.Estimate {
			return "~" + strconv.FormatInt(c.N, 10)
		}
		return strconv.FormatInt(c.N, 10)
	},
	"rate": func(r ops.Rate) string {
		return strconv.FormatFloat(r.PerSecond, 'f', rateDigits(r.PerSecond), 64) + "/s"
	},
	"pct":  func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + " %" },
	"when": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ms": func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
	},
	"add": func(a, b int) int { return a + b },
}

func rateDigits(r float64) int {
	if r >= 10 || r == 0 {
		return 0
	}
	return 2
}

// human writes a duration the way a person reads it at a glance.
func human(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(math.Mod(d.Seconds(), 60)))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(math.Mod(d.Minutes(), 60)))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
