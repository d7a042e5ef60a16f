package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/productd/productd/api"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/ops"
	"github.com/productd/productd/ops/web"
)

// Without the database, the console's pages and reads answer 500 without
// showing the error, which is logged with the path; a product's read says
// the database is unavailable (503). An action whose body is not JSON is
// refused (400) before anything runs.
func TestConsoleWithoutItsDatabase(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	log, hook := logtest.NewNullLogger()
	console, err := ops.New(ops.Config{Pool: pool, AMQPURL: amqptest.URL(t), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(api.Config{Products: db.NewProductService(pool), Log: log})
	web.Mount(srv.Router(), web.Config{Console: console, ClientAddr: api.ClientAddr, Log: log})
	s := &site{t: t, pool: pool, srv: srv}

	if rec := s.do(request{method: http.MethodPost, path: web.APIPath + "/relay/pause", body: "{not json"}); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "not the JSON of an action") {
		t.Errorf("an action with a broken body: %d %s, want 400 saying so", rec.Code, rec.Body)
	}
	pool.Close()
	for _, path := range []string{web.PagePath, web.APIPath + "/overview", web.APIPath + "/actions"} {
		rec := s.do(request{path: path})
		if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "closed pool") {
			t.Errorf("GET %s on a closed pool: %d %s, want 500 without the error", path, rec.Code, rec.Body)
		}
		var logged bool
		for _, e := range hook.AllEntries() {
			if err, _ := e.Data[logrus.ErrorKey].(error); e.Level == logrus.ErrorLevel && e.Data["path"] == path && err != nil && strings.Contains(err.Error(), "closed pool") {
				logged = true
			}
		}
		if !logged {
			t.Errorf("GET %s on a closed pool: the error was not logged with the path", path)
		}
	}
	if rec := s.do(request{path: web.APIPath + "/products/7"}); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("a product on a closed pool: %d %s, want 503", rec.Code, rec.Body)
	}
}
