// Package web serves the ops console over HTTP: the /ops page
// (server-rendered, live without a reload when JavaScript runs, complete
// without it), its JSON under /ops/api, and River UI under /riverui/, all
// behind one authorisation.
package web

import (
	"cmp"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/netip"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/internal/settings"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/ops"
)

//go:embed assets templates
var files embed.FS

// Config is what the console's routes need. Console, ClientAddr and Log are
// required.
type Config struct {
	// Console reads and steers the deployment.
	Console *ops.Console
	// Token, when set, is required as a Bearer token or as the basic-auth
	// password. When empty, only loopback clients are let in.
	Token string
	// ClientAddr returns the request's client address as the server
	// resolved it: the socket's peer unless a trusted proxy forwarded the
	// request. Loopback is decided on it, never on a header.
	ClientAddr func(*gin.Context) netip.Addr
	// RiverUI, when set, is served under /riverui/ behind the same
	// authorisation.
	RiverUI http.Handler
	// Log receives refused requests.
	Log *logrus.Logger
	// RefreshSeconds is how often the page refreshes its figures when
	// JavaScript runs. Zero means DefaultRefreshSeconds (2).
	RefreshSeconds int
}

// DefaultRefreshSeconds is the page's refresh period.
const DefaultRefreshSeconds = 2

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.RefreshSeconds = cmp.Or(c.RefreshSeconds, DefaultRefreshSeconds)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	switch {
	case c.ClientAddr == nil:
		return errors.New("ops web: Config.ClientAddr is required")
	case c.Log == nil:
		return errors.New("ops web: Config.Log is required")
	}
	return settings.NonNegative("ops web", settings.F("RefreshSeconds", c.RefreshSeconds))
}

// Paths of the console.
const (
	PagePath    = "/ops"
	APIPath     = "/ops/api"
	RiverUIPath = "/riverui"
)

type handler struct {
	cfg    Config
	page   *template.Template
	csrf   *http.CrossOriginProtection
	log    *logrus.Entry
	assets http.Handler
}

// Mount adds the console's routes to r. It panics when a setting of cfg
// cannot work (see Config.validate), as api.NewServer does.
func Mount(r gin.IRouter, cfg Config) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	assets, err := fs.Sub(files, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	h := &handler{
		cfg:    cfg,
		page:   template.Must(template.New("page").Funcs(funcs).ParseFS(files, "templates/*.tmpl")),
		csrf:   http.NewCrossOriginProtection(),
		log:    cfg.Log.WithField(logging.FieldComponent, "ops"),
		assets: http.StripPrefix(PagePath+"/assets/", http.FileServerFS(assets)),
	}
	g := r.Group("", h.authorize, h.sameOrigin)
	g.GET(PagePath, h.showPage)
	g.GET(PagePath+"/assets/*file", gin.WrapH(h.assets))
	g.POST(PagePath+"/actions/:action", h.formAction)

	a := g.Group(APIPath)
	a.GET("/overview", h.overview)
	a.GET("/flow", h.flow)
	a.GET("/outbox", h.outbox)
	a.GET("/dead", h.dead)
	a.GET("/relay", h.relays)
	a.GET("/pipeline", h.pipeline)
	a.GET("/cache", h.cache)
	a.GET("/actions", h.actions)
	a.GET("/products/:id", h.product)
	a.POST("/dead/:id/requeue", h.requeueOne)
	a.POST("/dead/:id/discard", h.discardOne)
	a.POST("/dead/requeue", h.requeueMatching)
	a.POST("/relay/pause", h.pause)
	a.POST("/relay/resume", h.resume)
	a.POST("/products/:id/rerun", h.rerun)
	a.POST("/parking/replay", h.replay)

	if cfg.RiverUI != nil {
		g.Any(RiverUIPath+"/*any", gin.WrapH(cfg.RiverUI))
		g.GET(RiverUIPath, func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, RiverUIPath+"/") })
	}
}
