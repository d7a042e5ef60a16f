package fetch_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/productd/productd"
	"github.com/productd/productd/imageworker/internal/fetch"
)

// server serves a few paths, like an image host would.
func server(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/img.jpg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write([]byte("\xff\xd8\xff fake jpeg"))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 2048)) // no Content-Length up front: chunked
		w.(http.Flusher).Flush()
		w.Write(make([]byte, 2048))
	})
	mux.HandleFunc("/declared-big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5000")
		w.Write(make([]byte, 5000))
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/to-file", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	for path, code := range map[string]int{"/404": 404, "/410": 410, "/403": 403, "/500": 500, "/503": 503, "/429": 429} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, cfg fetch.Config) *fetch.Client {
	t.Helper()
	c, err := fetch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantCode(t *testing.T, err error, code, reason string) {
	t.Helper()
	if productd.ErrorCode(err) != code || !strings.Contains(productd.ErrorMessage(err), reason) {
		t.Fatalf("got %v; want %s saying %q", err, code, reason)
	}
}

func TestGetAllowListedServer(t *testing.T) {
	t.Parallel()
	srv := server(t)
	c := newClient(t, fetch.Config{Allow: []string{"127.0.0.1:*"}, MaxBytes: 3000, Timeout: 2 * time.Second})
	ctx := context.Background()

	body, err := c.Get(ctx, srv.URL+"/img.jpg")
	if err != nil || string(body) != "\xff\xd8\xff fake jpeg" {
		t.Fatalf("Get = %q, %v", body, err)
	}
	for _, tc := range []struct{ path, code, reason string }{
		{"/404", productd.ENOTFOUND, "404 Not Found"},
		{"/410", productd.ENOTFOUND, "410 Gone"},
		{"/403", productd.EUNPROCESSABLE, "403 Forbidden"},
		{"/500", productd.EUNAVAILABLE, "500 Internal Server Error"},
		{"/503", productd.EUNAVAILABLE, "503"},
		{"/429", productd.EUNAVAILABLE, "429"},
		{"/big", productd.ETOOLARGE, "larger than the limit"},
		{"/declared-big", productd.ETOOLARGE, "larger than the limit"},
		{"/loop", productd.EUNPROCESSABLE, "more than 5 redirects"},
		{"/to-file", productd.EUNPROCESSABLE, "redirected to a file URL"},
	} {
		_, err := c.Get(ctx, srv.URL+tc.path)
		wantCode(t, err, tc.code, tc.reason)
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	t.Parallel()
	srv := server(t)
	c := newClient(t, fetch.Config{Allow: []string{"127.0.0.0/8:*"}, Timeout: 200 * time.Millisecond})
	// /hang never answers: only the timeout can end the request, and the
	// error says that it did.
	_, err := c.Get(context.Background(), srv.URL+"/hang")
	wantCode(t, err, productd.EUNAVAILABLE, "did not answer within 200ms")
}

func TestRefusedConnectionIsTransient(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c := newClient(t, fetch.Config{Allow: []string{"127.0.0.1/32:*"}})
	_, err = c.Get(context.Background(), "http://"+addr+"/x.jpg")
	wantCode(t, err, productd.EUNAVAILABLE, "refused the connection")
}

// Without an allow-list entry, every internal address is refused, however
// it is written and whatever it hides behind.
func TestSSRFRefusals(t *testing.T) {
	t.Parallel()
	srv := server(t)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	v6 := httptest.NewUnstartedServer(http.NotFoundHandler())
	if l, err := net.Listen("tcp", "[::1]:0"); err == nil {
		v6.Listener = l
		v6.Start()
		t.Cleanup(v6.Close)
	}
	dns := fakeDNS(t, "127.0.0.1")
	ctx := context.Background()

	// A trusted host by name, that redirects inwards.
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, srv.URL+"/img.jpg", http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	rport := redirector.URL[strings.LastIndex(redirector.URL, ":")+1:]

	plain := newClient(t, fetch.Config{Resolver: dns, Timeout: 2 * time.Second})
	trusting := newClient(t, fetch.Config{Resolver: dns, Allow: []string{"images.example.com:*"}, Timeout: 2 * time.Second})
	for _, tc := range []struct {
		name    string
		c       *fetch.Client
		url     string
		address string // what the URL leads to, which the reason must not name
	}{
		{"loopback", plain, srv.URL + "/img.jpg", "127.0.0.1"},
		{"loopback on port 80", plain, "http://127.0.0.1/img.jpg", "127.0.0.1"},
		{"private", plain, "http://10.0.0.1/img.jpg", "10.0.0.1"},
		{"metadata", plain, "http://169.254.169.254/latest/meta-data/", "169.254.169.254"},
		{"IPv6 loopback", plain, "http://[::1]/img.jpg", "::1"},
		{"localhost", plain, "http://localhost:" + port + "/img.jpg", "127.0.0.1"},
		{"name resolving to loopback", plain, "http://rebind.example.com/img.jpg", "127.0.0.1"},
		{"public-looking URL redirecting to loopback", trusting, "http://images.example.com:" + rport + "/", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Get(ctx, tc.url)
			wantRefused(t, err, tc.address)
		})
	}
	// The trusted name itself is fetched.
	if _, err := trusting.Get(ctx, "http://images.example.com:"+port+"/img.jpg"); err != nil {
		t.Fatalf("allow-listed host name: %v", err)
	}
}

// wantRefused checks that err is the guard's refusal and that its reason,
// which anyone may read in image_error, does not say where the URL led.
func wantRefused(t *testing.T, err error, address string) {
	t.Helper()
	wantCode(t, err, productd.EUNPROCESSABLE, "the URL leads to an address that is not allowed")
	if msg := productd.ErrorMessage(err); strings.Contains(msg, address) || strings.Contains(msg, ":80") {
		t.Fatalf("the reason %q tells where the URL led", msg)
	}
}

// What each form of allow-list entry lets through, against a server on
// loopback (every name resolves to 127.0.0.1 here).
func TestAllowListEntries(t *testing.T) {
	t.Parallel()
	srv, other := server(t), server(t)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	dns := fakeDNS(t, "127.0.0.1")
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		allow string
		url   string
		ok    bool
	}{
		{"a name with its port", "images.example.com:" + port, "http://images.example.com:" + port + "/img.jpg", true},
		{"a name, another port", "images.example.com:" + port, "http://images.example.com" + other.URL[strings.LastIndex(other.URL, ":"):] + "/img.jpg", false},
		{"a name without a port opens 80 and 443 only", "images.example.com", "http://images.example.com:" + port + "/img.jpg", false},
		{"another name leading to the same address", "images.example.com:" + port, "http://rebind.example.com:" + port + "/img.jpg", false},
		{"a CIDR with its port, whatever the name", "127.0.0.0/8:" + port, "http://rebind.example.com:" + port + "/img.jpg", true},
		{"a CIDR without a port", "127.0.0.0/8", "http://rebind.example.com:" + port + "/img.jpg", false},
		{"an address with its port", "127.0.0.1:" + port, srv.URL + "/img.jpg", true},
		{"another address", "127.0.0.2:" + port, srv.URL + "/img.jpg", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, fetch.Config{Resolver: dns, Allow: []string{tc.allow}, Timeout: 2 * time.Second})
			_, err := c.Get(ctx, tc.url)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok:
				wantRefused(t, err, "127.0.0.1")
			}
		})
	}
}

func TestNoSuchHost(t *testing.T) {
	t.Parallel()
	c := newClient(t, fetch.Config{Resolver: fakeDNS(t, ""), Timeout: 2 * time.Second})
	_, err := c.Get(context.Background(), "http://nowhere.example.com/img.jpg")
	wantCode(t, err, productd.ENOTFOUND, "nowhere.example.com does not exist")
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	c := newClient(t, fetch.Config{})
	for _, u := range []string{"ftp://example.com/x.jpg", "/relative.jpg", "http://", "http://exa mple.com/"} {
		if _, err := c.Get(context.Background(), u); productd.ErrorCode(err) != productd.EUNPROCESSABLE {
			t.Errorf("Get(%q) = %v, want EUNPROCESSABLE", u, err)
		}
	}
	for _, bad := range []string{"10.0.0.0/99", "host:99999", "a b"} {
		if _, err := fetch.New(fetch.Config{Allow: []string{bad}}); err == nil {
			t.Errorf("the allow-list entry %q was accepted", bad)
		}
	}
}

// fakeDNS answers every A query with ip (NXDOMAIN when ip is empty) and
// returns a resolver that asks it.
func fakeDNS(t *testing.T, ip string) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			hdr, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			rcode := dnsmessage.RCodeSuccess
			if ip == "" {
				rcode = dnsmessage.RCodeNameError
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: hdr.ID, Response: true, Authoritative: true, RCode: rcode})
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			if ip != "" && q.Type == dnsmessage.TypeA {
				a := net.ParseIP(ip).To4()
				b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
					dnsmessage.AResource{A: [4]byte{a[0], a[1], a[2], a[3]}})
			}
			msg, err := b.Finish()
			if err == nil {
				pc.WriteTo(msg, from)
			}
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

func TestNewRefusesNegativeSettingsByName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  fetch.Config
		want string
	}{
		{fetch.Config{Timeout: -time.Second}, "Config.Timeout"},
		{fetch.Config{MaxBytes: -1}, "Config.MaxBytes"},
		{fetch.Config{MaxRedirects: -1}, "Config.MaxRedirects"},
	} {
		if _, err := fetch.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}
