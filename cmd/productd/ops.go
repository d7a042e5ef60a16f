package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"
	logrusslog "github.com/sirupsen/logrus/hooks/slog"
	"riverqueue.com/riverui"

	"github.com/productd/productd/api"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/imageworker"
	"github.com/productd/productd/ops"
	"github.com/productd/productd/ops/web"
	"github.com/productd/productd/storage"
)

// newConsole returns the ops console of the deployment a describes, with a
// broker connection of its own (closed by the returned function).
func newConsole(a *app) (*ops.Console, func(), error) {
	b, err := broker.New(broker.Config{URL: a.cfg.AMQPURL, ConnectionName: "productd ops"}, a.log)
	if err != nil {
		return nil, nil, fmt.Errorf("ops: %w", err)
	}
	cfg := ops.Config{
		Pool: a.pool, AMQPURL: a.cfg.AMQPURL, ManagementURL: a.cfg.ManagementURL, Broker: b, Log: a.log,
	}
	if c, ok := a.products.(*cache.ProductService); ok {
		cfg.Cache = c.Stats
	}
	if s, err := storage.New(storageConfig(a.cfg)); err == nil {
		cfg.Storage = s.Check
	}
	// Re-running and replaying change products through a.products, so
	// that every cache hears of it.
	actions := imageworker.NewActions(a.products, b, a.log)
	cfg.Images = actions
	console, err := ops.New(cfg)
	if err != nil {
		_ = actions.Close()
		_ = b.Close()
		return nil, nil, err
	}
	return console, func() {
		_ = actions.Close()
		_ = b.Close()
	}, nil
}

// mountOps serves the ops console, its JSON and River UI on r until ctx
// ends. The returned function releases what it opened.
func mountOps(ctx context.Context, a *app, r *gin.Engine) (func(), error) {
	console, closeConsole, err := newConsole(a)
	if err != nil {
		return nil, err
	}
	go console.Run(ctx)
	riverUI, err := newRiverUI(ctx, a)
	if err != nil {
		closeConsole()
		return nil, err
	}
	web.Mount(r, web.Config{
		Console: console, Token: a.cfg.OpsToken, ClientAddr: api.ClientAddr, RiverUI: riverUI, Log: a.log,
	})
	return closeConsole, nil
}

// newRiverUI returns River UI on the process's River client (the chores'),
// which reads and steers the jobs of whichever process runs them.
func newRiverUI(ctx context.Context, a *app) (http.Handler, error) {
	logger := slog.New(logrusslog.NewHandler(a.log, &logrusslog.HandlerOptions{LevelMapper: riverUILevel}))
	client, err := a.chores.Client()
	if err != nil {
		return nil, fmt.Errorf("river UI client: %w", err)
	}
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		Logger:    logger,
		Prefix:    web.RiverUIPath,
		// DevMode would load the UI's scripts from a development server.
		DevMode: false,
	})
	if err != nil {
		return nil, fmt.Errorf("river UI: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("start river UI: %w", err)
	}
	return h, nil
}

// riverUILevel keeps River UI's routine below info.
func riverUILevel(l slog.Level) logrus.Level {
	if l >= slog.LevelWarn {
		return logrus.WarnLevel
	}
	return logrus.DebugLevel
}
