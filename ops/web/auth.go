package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/logging"
)

// actorKey holds who is asking, for the record of their actions.
const actorKey = "ops_actor"

// realm is the basic-auth realm a browser shows when it asks for the token.
const realm = `Basic realm="productd ops", charset="UTF-8"`

// authorize lets in a request that carries the token (as a Bearer token or
// as the basic-auth password, any user name), or, without a token
// configured, a loopback client. The user name of basic auth, when given,
// names the actor in the record of actions.
func (h *handler) authorize(c *gin.Context) {
	user, pass, hasBasic := c.Request.BasicAuth()
	addr := h.cfg.ClientAddr(c)
	if h.cfg.Token == "" {
		if !addr.IsLoopback() {
			h.refuse(c, http.StatusForbidden, "the ops console answers loopback clients only: set OPS_TOKEN to open it to others")
			return
		}
		c.Set(actorKey, actorName(user, "loopback "+addr.String()))
		c.Next()
		return
	}
	bearer, hasBearer := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	switch {
	case hasBearer && h.tokenMatches(bearer):
		c.Set(actorKey, "token from "+addr.String())
	case hasBasic && h.tokenMatches(pass):
		c.Set(actorKey, actorName(user, "token from "+addr.String()))
	default:
		c.Header("WWW-Authenticate", realm)
		h.refuse(c, http.StatusUnauthorized, "the ops console needs the OPS_TOKEN: as a Bearer token, or as the password of basic auth")
		return
	}
	c.Next()
}

// actorName is the basic-auth user name when there is one, with how the
// request was let in.
func actorName(user, how string) string {
	if user = strings.TrimSpace(user); user != "" && len(user) <= 64 {
		return user + " (" + how + ")"
	}
	return how
}

// tokenMatches compares in constant time, over hashes so that the length of
// the token does not leak either.
func (h *handler) tokenMatches(got string) bool {
	want := sha256.Sum256([]byte(h.cfg.Token))
	have := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], have[:]) == 1
}

// sameOrigin refuses a state-changing request that a browser sent from
// another origin, so that a page elsewhere cannot make a logged-in (or
// loopback) browser requeue, discard or pause. Requests without the
// browser's Sec-Fetch-Site and Origin headers (curl, scripts) pass: they
// carry no ambient credentials.
func (h *handler) sameOrigin(c *gin.Context) {
	if err := h.csrf.Check(c.Request); err != nil {
		h.refuse(c, http.StatusForbidden, "cross-origin request refused: send actions from the console's own page")
		return
	}
	c.Next()
}

func (h *handler) refuse(c *gin.Context, status int, message string) {
	h.log.WithFields(logrus.Fields{
		"client_addr": h.cfg.ClientAddr(c).String(), "path": c.Request.URL.Path, "status": status,
	}).Warn("ops: request refused")
	code := "unauthorized"
	if status == http.StatusForbidden {
		code = "forbidden"
	}
	writeError(c, status, code, message)
}

func actor(c *gin.Context) string { return c.GetString(actorKey) }

// Authorize returns the console's authorisation as middleware, for other
// routes that need the same protection (the metrics). Only cfg.Token,
// cfg.ClientAddr and cfg.Log are used.
func Authorize(cfg Config) gin.HandlerFunc {
	h := &handler{cfg: cfg, log: cfg.Log.WithField(logging.FieldComponent, "ops")}
	return h.authorize
}
