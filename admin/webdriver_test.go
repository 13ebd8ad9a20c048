package admin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A minimal W3C WebDriver client over net/http for the graph viewer's
// browser test: just the commands it uses, against a chromedriver it
// starts and stops itself.

// requireChromium returns the chromium and chromedriver binaries, running
// scripts/install-chromium.sh when one is missing. Without them the test
// skips, or fails when DATAKIT_TEST_REQUIRE_SERVICES=1 (CI).
func requireChromium(t *testing.T) (chromium, driver string) {
	t.Helper()
	find := func() error {
		var err1, err2 error
		chromium, err1 = exec.LookPath("chromium")
		driver, err2 = exec.LookPath("chromedriver")
		return errors.Join(err1, err2)
	}
	if find() == nil {
		return chromium, driver
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	script := filepath.Join("..", "scripts", "install-chromium.sh")
	out, err := exec.CommandContext(ctx, "bash", script).CombinedOutput()
	if err == nil {
		err = find()
	}
	if err != nil {
		msg := fmt.Sprintf("headless Chromium unavailable (%s: %v)\n%s", script, err, tail(out, 2000))
		if os.Getenv("DATAKIT_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s\nChromium and chromedriver are required (DATAKIT_TEST_REQUIRE_SERVICES=1)", msg)
		}
		t.Skipf("%s\nskipping (set DATAKIT_TEST_REQUIRE_SERVICES=1 to fail)", msg)
	}
	return chromium, driver
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// portWriter collects chromedriver's output and reports the port it
// announces ("ChromeDriver was started successfully on port N.").
type portWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	port  chan string
	found bool
}

var startedOn = regexp.MustCompile(`started successfully on port (\d+)`)

func (w *portWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.found {
		if m := startedOn.FindSubmatch(w.buf.Bytes()); m != nil {
			w.found = true
			w.port <- string(m[1])
		}
	}
	return len(p), nil
}

func (w *portWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// webDriver is one browser session.
type webDriver struct {
	t       *testing.T
	client  *http.Client
	session string // http://127.0.0.1:PORT/session/ID
}

// startWebDriver starts chromedriver on a free loopback port and opens a
// headless Chromium session with a fresh profile. Cleanup closes the
// session and ends chromedriver and every process it started.
func startWebDriver(t *testing.T, chromium, driver string) *webDriver {
	t.Helper()
	out := &portWriter{port: make(chan string, 1)}
	cmd := exec.Command(driver, "--port=0")
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: cleanup ends Chromium's processes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", driver, err)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	var port string
	select {
	case port = <-out.port:
	case <-time.After(20 * time.Second):
		t.Fatalf("chromedriver did not announce its port within 20 s; output:\n%s", out)
	}
	base := "http://127.0.0.1:" + port
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args": []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
				"--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--disable-dev-shm-usage", "--window-size=1920,1080", "--user-data-dir=" + t.TempDir()},
		},
		"goog:loggingPrefs": map[string]any{"browser": "ALL"},
		"timeouts":          map[string]any{"script": 10000, "pageLoad": 15000, "implicit": 0},
	}}}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	d := &webDriver{t: t, client: client}
	if err := d.do(http.MethodPost, base+"/session", caps, &created); err != nil {
		t.Fatalf("new WebDriver session: %v\nchromedriver output:\n%s", err, out)
	}
	d.session = base + "/session/" + created.SessionID
	t.Cleanup(func() { _ = d.do(http.MethodDelete, d.session, nil, nil) })
	return d
}

// do sends one WebDriver command and decodes its "value" into out.
func (d *webDriver) do(method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var res struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	if resp.StatusCode != http.StatusOK {
		var werr struct{ Error, Message string }
		_ = json.Unmarshal(res.Value, &werr)
		return fmt.Errorf("%s %s: %s: %s", method, strings.TrimPrefix(url, d.session), werr.Error, firstLine(werr.Message))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(res.Value, out)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// cmd sends a command of the session and fails the test on error.
func (d *webDriver) cmd(method, path string, in, out any) {
	d.t.Helper()
	if err := d.do(method, d.session+path, in, out); err != nil {
		d.t.Fatal(err)
	}
}

func (d *webDriver) navigate(url string) {
	d.t.Helper()
	d.cmd(http.MethodPost, "/url", map[string]string{"url": url}, nil)
}

// eval runs a script body in the page (return gives the result) and
// decodes its result into out.
func (d *webDriver) eval(out any, script string, args ...any) {
	d.t.Helper()
	if args == nil {
		args = []any{}
	}
	d.cmd(http.MethodPost, "/execute/sync", map[string]any{"script": script, "args": args}, out)
}

// waitFor waits, without polling, until the JavaScript expression cond is
// true: a MutationObserver re-checks it on every DOM change, and the
// session's script timeout (10 s) bounds the wait.
func (d *webDriver) waitFor(what, cond string) {
	d.t.Helper()
	script := `const done = arguments[arguments.length - 1];
const check = () => { try { return Boolean(` + cond + `); } catch (e) { return false; } };
if (check()) { done(true); return; }
const obs = new MutationObserver(() => { if (check()) { obs.disconnect(); done(true); } });
obs.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});`
	if err := d.do(http.MethodPost, d.session+"/execute/async", map[string]any{"script": script, "args": []any{}}, nil); err != nil {
		var msg string
		_ = d.do(http.MethodPost, d.session+"/execute/sync", map[string]any{"script": `return document.getElementById("message").textContent`, "args": []any{}}, &msg)
		d.t.Fatalf("waiting for %s: %v (page message: %q)", what, err, msg)
	}
}

// element finds one element by CSS selector.
func (d *webDriver) element(css string) string {
	d.t.Helper()
	var ref map[string]string
	d.cmd(http.MethodPost, "/element", map[string]string{"using": "css selector", "value": css}, &ref)
	for _, id := range ref {
		return id
	}
	d.t.Fatalf("element %q: empty reference", css)
	return ""
}

func (d *webDriver) click(css string) {
	d.t.Helper()
	d.cmd(http.MethodPost, "/element/"+d.element(css)+"/click", map[string]any{}, nil)
}

func (d *webDriver) typeText(css, text string) {
	d.t.Helper()
	d.cmd(http.MethodPost, "/element/"+d.element(css)+"/value", map[string]string{"text": text}, nil)
}

// screenshot saves the viewport as a PNG file.
func (d *webDriver) screenshot(path string) {
	d.t.Helper()
	var b64 string
	d.cmd(http.MethodGet, "/screenshot", nil, &b64)
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		d.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// logEntry is one browser console entry.
type logEntry struct {
	Level   string `json:"level"`
	Message string `json:"message"`
	Source  string `json:"source"`
}

// browserLog returns and clears the console entries since the last call;
// ok is false when the driver does not expose the log.
func (d *webDriver) browserLog() (entries []logEntry, ok bool) {
	err := d.do(http.MethodPost, d.session+"/se/log", map[string]string{"type": "browser"}, &entries)
	return entries, err == nil
}
