package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
	"github.com/productd/productd/ops"
)

// errorBody is the JSON of every error, the same shape as the product API's.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(c *gin.Context, status int, code, message string) {
	var body errorBody
	body.Error.Code, body.Error.Message = code, message
	c.AbortWithStatusJSON(status, body)
}

// statusOf maps the console's errors to statuses.
func statusOf(err error) int {
	switch productd.ErrorCode(err) {
	case productd.ENOTFOUND:
		return http.StatusNotFound
	case productd.EINVALID:
		return http.StatusBadRequest
	case productd.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fail answers err; internal errors are logged and not shown.
func (h *handler) fail(c *gin.Context, err error) {
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		h.log.WithError(err).WithField("path", c.Request.URL.Path).Error("ops: request failed")
	}
	writeError(c, status, productd.ErrorCode(err), productd.ErrorMessage(err))
}

// answer writes v as JSON, or the error.
func answer[T any](h *handler, c *gin.Context, read func(context.Context) (T, error)) {
	v, err := read(c.Request.Context())
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

func (h *handler) overview(c *gin.Context) { answer(h, c, h.cfg.Console.Overview) }
func (h *handler) flow(c *gin.Context)     { answer(h, c, h.cfg.Console.Flow) }
func (h *handler) outbox(c *gin.Context)   { answer(h, c, h.cfg.Console.Outbox) }
func (h *handler) relays(c *gin.Context)   { answer(h, c, h.cfg.Console.Relays) }
func (h *handler) pipeline(c *gin.Context) { answer(h, c, h.cfg.Console.Pipeline) }

func (h *handler) cache(c *gin.Context) { c.JSON(http.StatusOK, h.cfg.Console.Cache()) }

func (h *handler) actions(c *gin.Context) {
	answer(h, c, func(ctx context.Context) ([]ops.Action, error) { return h.cfg.Console.Actions(ctx, 50) })
}

func (h *handler) dead(c *gin.Context) {
	f, before, err := deadQuery(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	answer(h, c, func(ctx context.Context) (ops.DeadPage, error) { return h.cfg.Console.Dead(ctx, f, before) })
}

func (h *handler) product(c *gin.Context) {
	id, err := idParam(c)
	if err != nil {
		h.fail(c, err)
		return
	}
	answer(h, c, func(ctx context.Context) (ops.Story, error) { return h.cfg.Console.Product(ctx, id) })
}

// done is the answer of an action.
type done struct {
	Done  string `json:"done"`
	Count *int64 `json:"count,omitempty"`
}

func (h *handler) requeueOne(c *gin.Context) {
	h.act(c, func(ctx context.Context, body actionBody) (done, error) {
		id, err := idParam(c)
		if err != nil {
			return done{}, err
		}
		return done{Done: "requeued outbox row " + strconv.FormatInt(id, 10)}, h.cfg.Console.RequeueDead(ctx, actor(c), id)
	})
}

func (h *handler) discardOne(c *gin.Context) {
	h.act(c, func(ctx context.Context, body actionBody) (done, error) {
		id, err := idParam(c)
		if err != nil {
			return done{}, err
		}
		return done{Done: "discarded outbox row " + strconv.FormatInt(id, 10)}, h.cfg.Console.DiscardDead(ctx, actor(c), id)
	})
}

func (h *handler) requeueMatching(c *gin.Context) {
	h.act(c, func(ctx context.Context, body actionBody) (done, error) {
		f := ops.DeadFilter{EventType: body.EventType, ProductID: body.ProductID, ErrorContains: body.Error}
		if f.IsZero() && !body.All {
			return done{}, productd.Errorf(productd.EINVALID, "give a filter (event_type, product_id, error) or \"all\": true")
		}
		n, err := h.cfg.Console.RequeueDeadMatching(ctx, actor(c), f)
		return done{Done: "requeued dead rows", Count: &n}, err
	})
}

func (h *handler) pause(c *gin.Context) {
	h.act(c, func(ctx context.Context, body actionBody) (done, error) {
		if body.Reason == "" {
			return done{}, productd.Errorf(productd.EINVALID, "say why the relay is paused (reason)")
		}
		return done{Done: "relay paused"}, h.cfg.Console.PauseRelay(ctx, actor(c), body.Reason)
	})
}

func (h *handler) resume(c *gin.Context) {
	h.act(c, func(ctx context.Context, body actionBody) (done, error) {
		return done{Done: "relay resumed"}, h.cfg.Console.ResumeRelay(ctx, actor(c), body.Reason)
	})
}

func (h *handler) rerun(c *gin.Context) {
	h.act(c, func(ctx context.Context, body actionBody) (done, error) {
		id, err := idParam(c)
		if err != nil {
			return done{}, err
		}
		reason := body.Reason
		if reason == "" {
			reason = "re-run from the ops console"
		}
		return done{Done: "re-running the images of product " + strconv.FormatInt(id, 10)},
			h.cfg.Console.RerunImages(ctx, actor(c), id, reason)
	})
}

func (h *handler) replay(c *gin.Context) {
	h.act(c, func(ctx context.Context, body actionBody) (done, error) {
		limit := body.Limit
		if limit <= 0 {
			limit = DefaultReplayLimit
		}
		n, err := h.cfg.Console.ReplayParking(ctx, actor(c), limit)
		count := int64(n)
		return done{Done: "replayed parked messages", Count: &count}, err
	})
}

// DefaultReplayLimit bounds a replay that names no limit.
const DefaultReplayLimit = 1000

// actionBody is the optional JSON body of an action.
type actionBody struct {
	Reason    string `json:"reason"`
	EventType string `json:"event_type"`
	ProductID int64  `json:"product_id"`
	Error     string `json:"error"`
	All       bool   `json:"all"`
	Limit     int    `json:"limit"`
}

// act decodes the action's body, runs it and answers what it did.
func (h *handler) act(c *gin.Context, run func(context.Context, actionBody) (done, error)) {
	var body actionBody
	if err := c.ShouldBindJSON(&body); err != nil && !errors.Is(err, io.EOF) {
		h.fail(c, productd.Errorf(productd.EINVALID, "the body is not the JSON of an action: %v", err))
		return
	}
	d, err := run(c.Request.Context(), body)
	if err != nil {
		h.fail(c, err)
		return
	}
	h.log.WithFields(logrus.Fields{"actor": actor(c), "done": d.Done}).Debug("ops: api action")
	c.JSON(http.StatusOK, d)
}

func idParam(c *gin.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, productd.Errorf(productd.EINVALID, "%q is not an id", c.Param("id"))
	}
	return id, nil
}

func intParam(v, name string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, productd.Errorf(productd.EINVALID, "%s=%q is not a number", name, v)
	}
	return n, nil
}

// deadQuery reads a dead-row filter and the page cursor (before).
func deadQuery(c *gin.Context) (ops.DeadFilter, int64, error) {
	f, err := filterOf(c)
	if err != nil {
		return f, 0, err
	}
	before, err := intParam(c.Query("before"), "before")
	return f, before, err
}

// filterOf reads a dead-row filter from the query or a form.
func filterOf(c *gin.Context) (ops.DeadFilter, error) {
	pid, err := intParam(c.Request.FormValue("product_id"), "product_id")
	return ops.DeadFilter{EventType: c.Request.FormValue("event_type"), ProductID: pid, ErrorContains: c.Request.FormValue("error")}, err
}
