package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.yaml.in/yaml/v3"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/ops"
	"github.com/productd/productd/ops/web"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// site is the product API's server with the console mounted on it, as
// productd serves them, on a database and broker of the test's own.
type site struct {
	t    *testing.T
	pool *pgxpool.Pool
	srv  *api.Server
}

// newSite serves the console with token (empty for loopback only) behind
// trusted proxies.
func newSite(t *testing.T, token string, trusted ...netip.Prefix) *site {
	t.Helper()
	pool := dbtest.NewPool(t)
	b := amqptest.NewBroker(t, broker.Config{}, logging.Discard())
	console, err := ops.New(ops.Config{Pool: pool, AMQPURL: amqptest.URL(t), Broker: b, Log: logging.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(api.Config{Products: db.NewProductService(pool), Log: logging.Discard(), TrustedProxies: trusted})
	riverUI := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "river ui at ", r.URL.Path) })
	web.Mount(srv.Router(), web.Config{Console: console, Token: token, ClientAddr: api.ClientAddr, RiverUI: riverUI, Log: logging.Discard()})
	return &site{t: t, pool: pool, srv: srv}
}

// request is one request to the site: from is the socket's peer address.
type request struct {
	method, path, from, body string
	headers                  map[string]string
}

func (s *site) do(r request) *httptest.ResponseRecorder {
	s.t.Helper()
	req := httptest.NewRequest(cmpOr(r.method, http.MethodGet), r.path, strings.NewReader(r.body))
	req.RemoteAddr = cmpOr(r.from, "127.0.0.1:40000")
	if r.body != "" {
		ct := "application/json"
		if !strings.HasPrefix(r.body, "{") {
			ct = "application/x-www-form-urlencoded"
		}
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.srv.ServeHTTP(rec, req)
	return rec
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (s *site) exec(sql string, args ...any) {
	s.t.Helper()
	if _, err := s.pool.Exec(context.Background(), sql, args...); err != nil {
		s.t.Fatal(err)
	}
}

// product creates a product with an image; it has a pending outbox row.
func (s *site) product() int64 {
	s.t.Helper()
	c, err := db.NewProductService(s.pool).CreateProduct(context.Background(), &productd.Product{
		UserID: 1, Name: "lamp", Price: productd.Price(100), Images: []string{"https://example.com/a.jpg"},
	}, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return c.ProductID
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", rec.Body.String(), err)
	}
	return v
}

func basic(user, pass string) map[string]string {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, pass)
	return map[string]string{"Authorization": r.Header.Get("Authorization")}
}

// Without a token only loopback clients get in, decided on the socket's
// address: a forwarded header from anyone but a trusted proxy changes
// nothing.
func TestWithoutATokenOnlyLoopbackClientsGetIn(t *testing.T) {
	t.Parallel()
	proxy := netip.MustParsePrefix("192.0.2.10/32")
	s := newSite(t, "", proxy)
	for _, tc := range []struct {
		name    string
		from    string
		headers map[string]string
		want    int
	}{
		{"loopback", "127.0.0.1:5000", nil, http.StatusOK},
		{"IPv6 loopback", "[::1]:5000", nil, http.StatusOK},
		{"another host", "203.0.113.7:5000", nil, http.StatusForbidden},
		{"another host forging loopback", "203.0.113.7:5000", map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"}, http.StatusForbidden},
		{"a trusted proxy forwarding another host", "192.0.2.10:5000", map[string]string{"X-Forwarded-For": "203.0.113.7"}, http.StatusForbidden},
		{"a trusted proxy forwarding a forged loopback", "192.0.2.10:5000", map[string]string{"X-Forwarded-For": "127.0.0.1, 203.0.113.7"}, http.StatusForbidden},
		{"a trusted proxy naming no client", "192.0.2.10:5000", nil, http.StatusForbidden},
	} {
		for _, path := range []string{"/ops", "/ops/api/flow", "/riverui/"} {
			rec := s.do(request{path: path, from: tc.from, headers: tc.headers})
			if rec.Code != tc.want {
				t.Errorf("%s: GET %s = %d, want %d: %s", tc.name, path, rec.Code, tc.want, rec.Body.String())
			}
		}
	}
	if rec := s.do(request{path: "/riverui/jobs"}); rec.Code != http.StatusOK || rec.Body.String() != "river ui at /riverui/jobs" {
		t.Errorf("River UI: %d %q", rec.Code, rec.Body.String())
	}
}

// With a token, it is required from everyone, loopback included, as a
// Bearer token or as the basic-auth password.
func TestWithATokenItIsRequired(t *testing.T) {
	t.Parallel()
	s := newSite(t, "s3cret")
	for _, tc := range []struct {
		name    string
		from    string
		headers map[string]string
		want    int
	}{
		{"no token", "", nil, http.StatusUnauthorized},
		{"no token from another host", "203.0.113.7:5000", nil, http.StatusUnauthorized},
		{"a wrong bearer token", "", map[string]string{"Authorization": "Bearer s3cre"}, http.StatusUnauthorized},
		{"a wrong password", "", basic("alice", "S3CRET"), http.StatusUnauthorized},
		{"the token as a user name", "", basic("s3cret", ""), http.StatusUnauthorized},
		{"the bearer token", "203.0.113.7:5000", map[string]string{"Authorization": "Bearer s3cret"}, http.StatusOK},
		{"the token as the password", "203.0.113.7:5000", basic("alice", "s3cret"), http.StatusOK},
	} {
		for _, path := range []string{"/ops", "/ops/api/overview", "/riverui/"} {
			rec := s.do(request{path: path, from: tc.from, headers: tc.headers})
			if rec.Code != tc.want {
				t.Errorf("%s: GET %s = %d, want %d", tc.name, path, rec.Code, tc.want)
			}
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("%s: GET %s asks for no credentials", tc.name, path)
			}
		}
	}
	// A refused action changes nothing.
	id := s.product()
	s.exec(`UPDATE outbox SET status = 'dead' WHERE product_id = $1`, id)
	rec := s.do(request{method: http.MethodPost, path: "/ops/api/dead/requeue", body: `{"all":true}`, headers: basic("mallory", "guess")})
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("requeue without the token = %d", rec.Code)
	}
	dead := decode[ops.DeadPage](t, s.do(request{path: "/ops/api/dead", headers: basic("alice", "s3cret")}))
	if len(dead.Rows) != 1 {
		t.Errorf("a refused requeue changed the dead rows: %+v", dead)
	}
	// The user name of basic auth names the actor.
	rec = s.do(request{method: http.MethodPost, path: fmt.Sprint("/ops/api/dead/", dead.Rows[0].ID, "/requeue"), headers: basic("alice", "s3cret")})
	if rec.Code != http.StatusOK {
		t.Fatalf("requeue = %d %s", rec.Code, rec.Body.String())
	}
	actions := decode[[]ops.Action](t, s.do(request{path: "/ops/api/actions", headers: map[string]string{"Authorization": "Bearer s3cret"}}))
	if len(actions) != 1 || !strings.HasPrefix(actions[0].Actor, "alice (token from 127.0.0.1)") || actions[0].Action != "requeue dead row" {
		t.Errorf("actions = %+v", actions)
	}
}

// A page on another site cannot make the operator's browser act: its
// cross-site POSTs are refused, whatever credentials the browser holds.
func TestCrossSiteActionsAreRefused(t *testing.T) {
	t.Parallel()
	s := newSite(t, "")
	id := s.product()
	s.exec(`UPDATE outbox SET status = 'dead' WHERE product_id = $1`, id)
	for _, headers := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://evil.example"},
	} {
		for _, path := range []string{"/ops/actions/requeue-matching", "/ops/api/dead/requeue", "/ops/api/relay/pause"} {
			body := `{"all":true,"reason":"x"}`
			if strings.HasPrefix(path, "/ops/actions") {
				body = "back="
			}
			rec := s.do(request{method: http.MethodPost, path: path, body: body, headers: headers})
			if rec.Code != http.StatusForbidden {
				t.Errorf("POST %s with %v = %d, want 403", path, headers, rec.Code)
			}
		}
	}
	if dead := decode[ops.DeadPage](t, s.do(request{path: "/ops/api/dead"})); len(dead.Rows) != 1 {
		t.Errorf("a cross-site POST changed the dead rows: %+v", dead)
	}
	if r := decode[ops.Relays](t, s.do(request{path: "/ops/api/relay"})); r.Paused {
		t.Error("a cross-site POST paused the relay")
	}
	// The console's own page posting to itself is let through.
	rec := s.do(request{method: http.MethodPost, path: "/ops/actions/requeue-matching", body: "back=",
		headers: map[string]string{"Sec-Fetch-Site": "same-origin"}})
	if rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Location"), "flash=Requeued+1+dead+rows") {
		t.Errorf("same-origin requeue: %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
}

// The JSON endpoints say what the tables hold, and the actions change it.
func TestJSONEndpointsFollowTheActions(t *testing.T) {
	t.Parallel()
	s := newSite(t, "")
	ids := []int64{s.product(), s.product(), s.product()}
	s.exec(`UPDATE outbox SET status = 'dead', attempts = 10, last_error = 'nacked' WHERE product_id = ANY($1)`, ids[:2])

	for _, path := range []string{"/ops/api/overview", "/ops/api/flow", "/ops/api/outbox", "/ops/api/relay",
		"/ops/api/pipeline", "/ops/api/cache", "/ops/api/actions", fmt.Sprint("/ops/api/products/", ids[0])} {
		if rec := s.do(request{path: path}); rec.Code != http.StatusOK || !json.Valid(rec.Body.Bytes()) {
			t.Errorf("GET %s = %d %s", path, rec.Code, rec.Body.String())
		}
	}
	out := decode[ops.Outbox](t, s.do(request{path: "/ops/api/outbox"}))
	if out.Dead.N != 2 || out.Pending.N != 1 {
		t.Fatalf("outbox = %+v", out)
	}
	dead := decode[ops.DeadPage](t, s.do(request{path: fmt.Sprint("/ops/api/dead?product_id=", ids[1])}))
	if len(dead.Rows) != 1 || dead.Rows[0].ProductID != ids[1] {
		t.Fatalf("dead of product %d = %+v", ids[1], dead)
	}
	if rec := s.do(request{method: http.MethodPost, path: fmt.Sprint("/ops/api/dead/", dead.Rows[0].ID, "/discard")}); rec.Code != http.StatusOK {
		t.Fatalf("discard = %d %s", rec.Code, rec.Body.String())
	}
	if rec := s.do(request{method: http.MethodPost, path: fmt.Sprint("/ops/api/dead/", dead.Rows[0].ID, "/discard")}); rec.Code != http.StatusNotFound {
		t.Errorf("discard again = %d, want 404", rec.Code)
	}
	if rec := s.do(request{method: http.MethodPost, path: "/ops/api/dead/requeue", body: `{}`}); rec.Code != http.StatusBadRequest {
		t.Errorf("requeue with no filter and no all = %d, want 400", rec.Code)
	}
	rec := s.do(request{method: http.MethodPost, path: "/ops/api/dead/requeue", body: `{"error":"NACK"}`})
	if d := decode[map[string]any](t, rec); rec.Code != http.StatusOK || d["count"] != 1.0 {
		t.Errorf("requeue matching = %d %v", rec.Code, d)
	}
	out = decode[ops.Outbox](t, s.do(request{path: "/ops/api/outbox"}))
	if out.Dead.N != 0 || out.Pending.N != 2 {
		t.Errorf("after discard and requeue: %+v", out)
	}

	if rec := s.do(request{method: http.MethodPost, path: "/ops/api/relay/pause", body: `{}`}); rec.Code != http.StatusBadRequest {
		t.Errorf("pause without a reason = %d", rec.Code)
	}
	if rec := s.do(request{method: http.MethodPost, path: "/ops/api/relay/pause", body: `{"reason":"upgrade"}`}); rec.Code != http.StatusOK {
		t.Fatalf("pause = %d %s", rec.Code, rec.Body.String())
	}
	if r := decode[ops.Relays](t, s.do(request{path: "/ops/api/relay"})); !r.Paused || r.Reason != "upgrade" || r.ChangedBy != "loopback 127.0.0.1" {
		t.Errorf("after pause: %+v", r)
	}
	story := decode[ops.Story](t, s.do(request{path: fmt.Sprint("/ops/api/products/", ids[2])}))
	if !strings.Contains(story.Why, "paused for maintenance") {
		t.Errorf("story while paused: %q", story.Why)
	}
	if rec := s.do(request{method: http.MethodPost, path: "/ops/api/relay/resume"}); rec.Code != http.StatusOK {
		t.Fatalf("resume = %d", rec.Code)
	}
	if r := decode[ops.Relays](t, s.do(request{path: "/ops/api/relay"})); r.Paused {
		t.Errorf("after resume: %+v", r)
	}
	if rec := s.do(request{method: http.MethodPost, path: "/ops/api/parking/replay"}); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("replay without the image pipeline = %d, want 503", rec.Code)
	}
	if rec := s.do(request{method: http.MethodPost, path: "/ops/api/products/x/rerun"}); rec.Code != http.StatusBadRequest {
		t.Errorf("rerun of a bad id = %d, want 400", rec.Code)
	}
	if rec := s.do(request{path: "/ops/api/dead?before=x"}); rec.Code != http.StatusBadRequest {
		t.Errorf("a bad cursor = %d, want 400", rec.Code)
	}
}

// The page shows the figures and a product's story, and its forms act and
// come back with what they did.
func TestThePageShowsAndActs(t *testing.T) {
	t.Parallel()
	s := newSite(t, "")
	id := s.product()
	s.exec(`UPDATE outbox SET status = 'dead', attempts = 10, last_error = 'nacked: queue full' WHERE product_id = $1`, id)
	var row int64
	if err := s.pool.QueryRow(context.Background(), `SELECT id FROM outbox WHERE product_id = $1`, id).Scan(&row); err != nil {
		t.Fatal(err)
	}

	page := s.do(request{path: fmt.Sprint("/ops?product=", id)})
	body := page.Body.String()
	for _, want := range []string{
		`data-stage="outbox"`, `data-stage="done"`, fmt.Sprintf(`data-row="%d"`, row), "nacked: queue full",
		"its event died in the outbox after 10 attempts", `href="/riverui/"`, `src="/ops/assets/ops.js"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if page.Code != http.StatusOK || page.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("page: %d %s", page.Code, page.Header().Get("Content-Type"))
	}
	for _, asset := range []string{"/ops/assets/ops.js", "/ops/assets/ops.css"} {
		if rec := s.do(request{path: asset}); rec.Code != http.StatusOK || rec.Body.Len() == 0 {
			t.Errorf("GET %s = %d", asset, rec.Code)
		}
	}

	form := url.Values{"id": {fmt.Sprint(row)}, "back": {"event_type=product.created"}}.Encode()
	rec := s.do(request{method: http.MethodPost, path: "/ops/actions/requeue", body: form})
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther || !strings.Contains(loc, "event_type=product.created") || !strings.Contains(loc, "flash=Requeued+outbox+row") {
		t.Errorf("requeue form: %d, Location %q", rec.Code, loc)
	}
	rec = s.do(request{method: http.MethodPost, path: "/ops/actions/discard", body: form})
	if loc := rec.Header().Get("Location"); !strings.Contains(loc, "error=dead+outbox+row") {
		t.Errorf("discarding a row that is no longer dead: Location %q", loc)
	}
	for action, body := range map[string]string{"pause": "reason=upgrade", "resume": "", "replay": "", "rerun": "id=1"} {
		rec := s.do(request{method: http.MethodPost, path: "/ops/actions/" + action, body: body + "&back="})
		if rec.Code != http.StatusSeeOther {
			t.Errorf("%s form = %d", action, rec.Code)
		}
	}
	if rec := s.do(request{method: http.MethodPost, path: "/ops/actions/pause", body: "back="}); !strings.Contains(rec.Header().Get("Location"), "error=") {
		t.Errorf("pause without a reason: Location %q", rec.Header().Get("Location"))
	}
	if rec := s.do(request{method: http.MethodPost, path: "/ops/actions/explode", body: "back="}); rec.Code != http.StatusNotFound {
		t.Errorf("an unknown action = %d", rec.Code)
	}
	page = s.do(request{path: "/ops?flash=Done.&event_type=product.created&product=abc"})
	if b := page.Body.String(); !strings.Contains(b, `class="flash"`) || !strings.Contains(b, "is not a product id") ||
		!strings.Contains(b, "resume relay") || !strings.Contains(b, "No dead rows match the filter") {
		t.Errorf("the page after the actions lacks the flash, the story error, the record or the filter:\n%s", b)
	}
}

// Every JSON route of the console is in the product API's OpenAPI
// description, with its method.
func TestOpenAPIDescribesEveryConsoleRoute(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	r := gin.New()
	web.Mount(r, web.Config{ClientAddr: api.ClientAddr, Log: logging.Discard()})
	param := regexp.MustCompile(`:([A-Za-z_]+)`)
	n := 0
	for _, route := range r.Routes() {
		if !strings.HasPrefix(route.Path, web.APIPath) {
			continue
		}
		n++
		path := param.ReplaceAllString(route.Path, "{$1}")
		if _, ok := spec.Paths[path][strings.ToLower(route.Method)]; !ok {
			t.Errorf("%s %s is not in api/openapi.yaml as %s", route.Method, route.Path, path)
		}
	}
	if n < 15 {
		t.Errorf("only %d console routes mounted", n)
	}
}
