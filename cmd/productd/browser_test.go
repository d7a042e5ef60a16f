package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
)

// chromiumPath returns Debian's Chromium, failing t with the command that
// installs it when it is missing.
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Fatal("Chromium is not installed; the ops page is tested in it. Install it with\n" +
		"    sudo apt-get install -y chromium\n(.ci/run installs it on CI machines)")
	return ""
}

// The console in a real browser: an operator logs in with the token, sees
// the flow, finds a real product's dead outbox row, requeues it with a
// click, and watches it become published without reloading the page.
func TestOpsPageInChromium(t *testing.T) {
	t.Parallel()
	chrome := chromiumPath(t)
	d := newDeployment(t)
	const token = "browser-test-token"
	d.setenv("OPS_TOKEN", token)
	logs := d.start(t, "all")
	d.awaitReady(t, logs)
	images := serveImage(t, readFixture(t, "photo.jpg"))
	p := d.create(t, jsonRequest(t, http.MethodPost, d.url("/products"), map[string]any{
		"user_id": 5, "product_name": "desk", "product_price": 120, "product_images": []string{images + "/photo.jpg"},
	}))
	d.awaitImages(t, logs, p.ID)

	// Its event went out; as far as the console knows, it died.
	db, err := pgx.Connect(context.Background(), d.getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var row int64
	err = db.QueryRow(context.Background(), `UPDATE outbox SET status = 'dead', attempts = 10, published_at = NULL,
		last_error = 'nacked: the broker refused it (marked dead by the browser test)'
		WHERE product_id = $1 RETURNING id`, p.ID).Scan(&row)
	if err != nil {
		t.Fatal(err)
	}
	// The relay is paused, so that the requeued row waits where the page
	// can show it pending.
	bearer := func(path string) {
		t.Helper()
		req := jsonRequest(t, http.MethodPost, d.url(path), map[string]string{"reason": "browser test"})
		req.Header.Set("Authorization", "Bearer "+token)
		expectStatus(t, d.do(t, req), http.StatusOK)
	}
	bearer("/ops/api/relay/pause")

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1400, 1600))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	// The first run starts the browser, which lives as long as its context:
	// the time limit goes on the actions' contexts only.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(browser, 2*time.Minute)
	defer cancelTimeout()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, logs)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	css := func(format string, args ...any) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(format, args...)) }

	// Log in: the token as the basic-auth password, the user name naming
	// the operator in the record of actions.
	login := base64.StdEncoding.EncodeToString([]byte("ada:" + token))
	do("open the console",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders,
				network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Basic " + login}})
			return err
		}),
		chromedp.Navigate(d.url("/ops")),
		chromedp.WaitVisible(css(`li[data-stage="outbox"]`)),
		chromedp.WaitVisible(css(`#dead tr[data-row="%d"]`, row)),
	)
	relayHealth, deadRow := text(`li[data-stage="relay"] .health`), text(fmt.Sprintf(`#dead tr[data-row="%d"]`, row))
	if !strings.HasPrefix(relayHealth, "warn") || !strings.Contains(deadRow, "marked dead by the browser test") {
		t.Errorf("the page shows the relay %q and the dead row %q", relayHealth, deadRow)
	}

	do("requeue the dead row",
		chromedp.Click(css(`#dead tr[data-row="%d"] button[name="requeue"]`, row)),
		chromedp.WaitVisible(css(`.flash`)),
	)
	if flash, want := text(`.flash`), fmt.Sprintf("Requeued outbox row %d.", row); flash != want {
		t.Errorf("after the click: %q, want %q", flash, want)
	}

	// The product's story shows the row pending; once the relay resumes,
	// the page, never reloaded, shows it published.
	status := fmt.Sprintf(`#story tr[data-row="%d"] td:nth-child(4)`, row)
	do("open the product's story",
		chromedp.Navigate(d.url(fmt.Sprintf("/ops?product=%d", p.ID))),
		chromedp.WaitVisible(chromedp.CSS(status)),
	)
	if pending := text(status); pending != "pending" {
		t.Fatalf("the requeued row is %q while the relay is paused, want pending", pending)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.opsTestMark = "same page"`)); err != nil {
		t.Fatal(err)
	}
	bearer("/ops/api/relay/resume")
	do("watch it become published", chromedp.WaitVisible(css(`#story tr[data-row="%d"] td.status-published`, row)))
	if mark, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.opsTestMark`)); err != nil || mark != "same page" {
		t.Errorf("the page was reloaded to show the change (mark %q, %v)", mark, err)
	}
	if why := text(`#story .why`); !strings.Contains(why, "done") {
		t.Errorf("why: %q", why)
	}

	// A picture of the console as the operator left it.
	do("show the overview", chromedp.Navigate(d.url("/ops")), chromedp.WaitVisible(css(`#actions`)))
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := os.Getenv("OPS_SCREENSHOT")
	if path == "" {
		path = filepath.Join(t.TempDir(), "ops.png")
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the ops page: %s", path)
	if len(shot) < 10_000 {
		t.Errorf("the screenshot has %d bytes", len(shot))
	}
}
