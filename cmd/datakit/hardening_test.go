package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/settings"
	"github.com/datakit-gateway/datakit/gateway/store"
	"github.com/datakit-gateway/datakit/internal/rawhttp"
)

// Hardening catalogue cases (spec/hardening.md §3.3, §3.4) run against a
// whole node; the others live beside the tests they grew from
// (lifecycle_test.go, durability_test.go, outage_test.go,
// multinode_test.go).

// websocketEcho is an upstream that accepts a WebSocket handshake (RFC
// 6455 §4.2) and then echoes every byte until its peer closes.
func websocketEcho(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "websocket only", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			websocketAccept(r.Header.Get("Sec-WebSocket-Key")))
		if brw.Flush() != nil {
			return
		}
		_, _ = io.Copy(conn, brw)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func websocketAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// eventSource is an upstream sending one server-sent event every 20 ms
// until the request ends.
func eventSource(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil || rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestT45HijackedAndStreamingConnections: a WebSocket and a server-sent
// event stream run through the proxy; on SIGTERM the shutdown hook ends
// both cleanly — the WebSocket's connection closes (EOF, no reset), the
// stream ends with its last chunk (EOF, not a truncated body) — well before
// drain_timeout, and the node exits 0 without aborting anything.
func TestT45HijackedAndStreamingConnections(t *testing.T) {
	const drainTimeout = 5 * time.Second
	file := filepath.Join(t.TempDir(), "kong.yml")
	doc := "_format_version: \"3.0\"\nservices:\n" +
		"  - {name: ws, url: \"" + websocketEcho(t) + "\", routes: [{name: ws, paths: [/ws]}]}\n" +
		"  - {name: sse, url: \"" + eventSource(t) + "\", routes: [{name: sse, paths: [/sse]}]}\n"
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	addrs, exit := startNodeLogging(t, []string{"database=off", "declarative_config=" + file, "proxy_listen=127.0.0.1:0",
		"status_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0", "drain_timeout=" + drainTimeout.String()}, logs)

	// The WebSocket: handshake, one masked frame echoed.
	ws, err := net.DialTimeout("tcp", addrs[0], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetDeadline(time.Now().Add(drainTimeout + 5*time.Second))
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	fmt.Fprintf(ws, "GET /ws HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	wsr := bufio.NewReader(ws)
	resp, err := http.ReadResponse(wsr, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != websocketAccept(key) {
		t.Fatalf("WebSocket handshake through the proxy = %v %v", resp, err)
	}
	frame := []byte{0x81, 0x84, 1, 2, 3, 4, 'p' ^ 1, 'i' ^ 2, 'n' ^ 3, 'g' ^ 4} // FIN text "ping", masked
	if _, err := ws.Write(frame); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, len(frame))
	if _, err := io.ReadFull(wsr, echo); err != nil || string(echo) != string(frame) {
		t.Fatalf("WebSocket echo = %q %v, want the frame back", echo, err)
	}

	// The event stream: the first event arrives.
	sseResp, err := (&http.Client{Timeout: drainTimeout + 5*time.Second}).Get("http://" + addrs[0] + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer sseResp.Body.Close()
	sse := bufio.NewReader(sseResp.Body)
	if line, err := sse.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first event = %q %v", line, err)
	}

	signalSelf(t, syscall.SIGTERM)
	sent := time.Now()
	wsEnd := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, wsr)
		wsEnd <- err
	}()
	_, err = io.Copy(io.Discard, sse)
	if err != nil {
		t.Errorf("event stream ended with %v after %v, want a clean end (EOF after the last chunk)", err, time.Since(sent))
	}
	if err := <-wsEnd; err != nil {
		t.Errorf("WebSocket connection ended with %v after %v, want EOF", err, time.Since(sent))
	}
	t.Logf("streams ended %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit status = %d, want 0", code)
		}
	case <-time.After(drainTimeout + 5*time.Second):
		t.Fatal("node still running after drain_timeout")
	}
	if took := time.Since(sent); took >= drainTimeout {
		t.Errorf("drain took %v: the streams held it to drain_timeout %v", took, drainTimeout)
	}
	if strings.Contains(logs.String(), "drain timeout") {
		t.Errorf("log reports aborted requests:\n%s", logs)
	}
}

// TestT32AdminBinding: the Admin API binds loopback by default; a
// non-loopback admin_listen without admin_token stops start-up with
// gateway.md's one-line message and exit status 1, unless
// admin_allow_remote_without_token = on or a token is set. With a token,
// a running node answers 401 to a missing, wrong or wrong-length token on
// every path, "OPTIONS *" included. The accepted non-loopback starts run
// with --check, which does all of start-up but bind: the tests bind
// nothing beyond 127.0.0.1.
func TestT32AdminBinding(t *testing.T) {
	st, err := settings.Load(settings.LoadOptions{SearchPaths: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.AdminListen) != 1 || st.AdminListen[0].Address() != "127.0.0.1:8001" || !st.AdminListen[0].IsLoopback() {
		t.Errorf("default admin_listen = %v, want 127.0.0.1:8001 only", st.AdminListen)
	}

	const token = "0123456789abcdef-token"
	base := []string{"serve", "--database", "off", "--proxy-listen", "127.0.0.1:0", "--status-listen", "127.0.0.1:0"}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"any address without token", []string{"--admin-listen", "0.0.0.0:0"}, 1, "",
			"admin_listen 0.0.0.0:0 is not a loopback address: set admin_token, or admin_allow_remote_without_token = on to accept the risk\n"},
		{"ipv6 any address without token", []string{"--admin-listen", "[::]:0"}, 1, "",
			"admin_listen [::]:0 is not a loopback address: set admin_token, or admin_allow_remote_without_token = on to accept the risk\n"},
		{"one of two non-loopback", []string{"--admin-listen", "127.0.0.1:0, 192.0.2.1:0", "--check"}, 1, "",
			"admin_listen 192.0.2.1:0 is not a loopback address: set admin_token, or admin_allow_remote_without_token = on to accept the risk\n"},
		{"opt-in", []string{"--admin-listen", "0.0.0.0:0", "--set", "admin_allow_remote_without_token=on", "--check"}, 0, "configuration OK\n", ""},
		{"token", []string{"--admin-listen", "0.0.0.0:0", "--set", "admin_token=" + token, "--check"}, 0, "configuration OK\n", ""},
		{"short token", []string{"--admin-listen", "0.0.0.0:0", "--set", "admin_token=short", "--check"}, 1, "", "admin_token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append(base, tc.args...)...)
			if code != tc.code || stdout != tc.stdout || !strings.Contains(stderr, tc.stderr) ||
				(tc.code == 1 && strings.Count(stderr, "\n") != 1) {
				t.Errorf("datakit %v = %d %q %q, want %d %q and one line with %q", tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}

	n := startTestNode(t, "database=off", "admin_token="+token)
	adminAddr := strings.TrimPrefix(n.admin, "http://")
	const unauth = `{"message":"Invalid credentials. Token or User credentials required"}`
	for _, line := range []string{"GET /", "GET /nope", "POST /config", "OPTIONS *", "OPTIONS /services", "TRACE /"} {
		for _, h := range []string{"", "Kong-Admin-Token: wrong\r\n", "Kong-Admin-Token: " + token[:len(token)-1] + "\r\n",
			"Kong-Admin-Token: " + token + "x\r\n", "Kong-Admin-Token: " + strings.ToUpper(token) + "\r\n"} {
			code, body := rawhttp.Exchange(t, adminAddr, line+" HTTP/1.1\r\nHost: localhost\r\n"+h+"Content-Length: 0\r\nConnection: close\r\n\r\n")
			if code != 401 || body != unauth {
				t.Errorf("%s with %q = %d %s, want 401", line, h, code, body)
			}
		}
	}
	if code, _ := rawhttp.Exchange(t, adminAddr, "GET / HTTP/1.1\r\nHost: localhost\r\nKong-Admin-Token: "+token+"\r\nConnection: close\r\n\r\n"); code != 200 {
		t.Errorf("GET / with the token = %d, want 200", code)
	}
}

// TestT47Overload: beyond max_inflight_requests the proxy answers 503 with
// Retry-After: 1 at once, without reaching the upstream, and serves again
// when the load is gone. (The load half, at twice the capacity, is
// scripts/hardening/t47-*.sh.)
func TestT47Overload(t *testing.T) {
	const limit = 4
	release := make(chan struct{})
	arrived := make(chan struct{}, 100)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	n := startTestNode(t, "database=off", fmt.Sprintf("max_inflight_requests=%d", limit),
		"declarative_config_string="+kongYML(up.URL))
	held := make(chan string, limit)
	for range limit {
		go func() {
			code, body, err := freshGet(n.proxy + "/")
			held <- fmt.Sprintf("%d %s %v", code, body, err)
		}()
	}
	receive(t, arrived, limit)
	var slowest time.Duration
	for i := range 20 {
		start := time.Now()
		code, h, body, err := call("GET", n.proxy+"/", nil)
		took := time.Since(start)
		slowest = max(slowest, took)
		if err != nil || code != 503 || h.Get("Retry-After") != "1" {
			t.Errorf("request %d over the limit = %d Retry-After %q %s (%v), want 503 with Retry-After: 1", i, code, h.Get("Retry-After"), body, err)
		}
		// The spec's bound is 10 ms; 1 s leaves room for a loaded machine.
		if took > time.Second {
			t.Errorf("request %d over the limit took %v", i, took)
		}
	}
	t.Logf("excess requests refused in at most %v", slowest.Round(time.Microsecond))
	select {
	case <-arrived:
		t.Error("a request over the limit reached the upstream")
	default:
	}
	close(release)
	for range limit {
		if got := <-held; got != "200 ok <nil>" {
			t.Errorf("request within the limit = %s, want 200 ok", got)
		}
	}
	for i := range 2 * limit {
		if code, body, err := fetch(n.proxy + "/"); code != 200 || body != "ok" {
			t.Errorf("request %d after the load = %d %q %v, want 200: recovered", i, code, body, err)
		}
	}
}

// versionFake is fake A or B of T38: GET /ver answers {"ver":"<ver>"};
// anything else answers "<name>:<X-Ver request header>".
func versionFake(t *testing.T, name, ver string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ver" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"ver":%q}`, ver)
			return
		}
		fmt.Fprintf(w, "%s:%s", name, r.Header.Get("X-Ver"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// versionDoc proxies / to fake, with a datakit graph that calls fake's
// /ver and sends the answer upstream as X-Ver.
func versionDoc(fake string) string {
	return `_format_version: "3.0"
services:
  - name: s
    url: ` + fake + `
    routes: [{name: r, paths: ["/"]}]
    plugins:
      - name: datakit
        config:
          nodes:
            - {name: VER, type: call, url: "` + fake + `/ver"}
            - {name: HDR, type: jq, input: VER.body, output: service_request.headers, jq: '{"X-Ver": .ver}'}
`
}

// TestT38AtomicSwapUnderLoad: 8 clients send requests while v1 (graph and
// upstream on fake A) and v2 (on fake B) replace each other through the
// Admin API. A request runs on one snapshot: its graph's call and its
// upstream are the same fake ("A:1" or "B:2", never "B:1"); no request
// fails. The catalogue's 20 s and 100 flips are bounded here to 8 s.
func TestT38AtomicSwapUnderLoad(t *testing.T) {
	const clients, flips, budget = 8, 100, 8 * time.Second
	v1, v2 := versionDoc(versionFake(t, "A", "1")), versionDoc(versionFake(t, "B", "2"))
	n := startTestNode(t, "database=off", "declarative_config_string="+v1)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	answers := map[string]int{}
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newKeepAliveClient()
			defer c.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(n.proxy + "/")
				answer := fmt.Sprint(err)
				if err == nil {
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					answer = fmt.Sprintf("%d %s %v", resp.StatusCode, b, err)
				}
				mu.Lock()
				answers[answer]++
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(budget)
	done := 0
	for ; done < flips && time.Now().Before(deadline); done++ {
		doc := v2
		if done%2 == 1 {
			doc = v1
		}
		mustCall(t, 201, "POST", n.admin+"/config", map[string]any{"config": doc})
	}
	close(stop)
	wg.Wait()
	total := 0
	for answer, count := range answers {
		total += count
		if answer != "200 A:1 <nil>" && answer != "200 B:2 <nil>" {
			t.Errorf("%d responses %q: not a whole v1 or v2", count, answer)
		}
	}
	if answers["200 A:1 <nil>"] == 0 || answers["200 B:2 <nil>"] == 0 || done < 20 {
		t.Errorf("%d flips; answers %v: want both versions served across at least 20 flips", done, answers)
	}
	t.Logf("%d flips; %d responses: %v", done, total, answers)
}

// ackedWrite is one acknowledged Admin API write of T39.
type ackedWrite struct {
	revision int64
	entity   string // consumer username
	customID string // the custom_id it wrote
}

// adminWrite sends one JSON write and returns its revision; any status but
// want fails the test (500s included).
func adminWrite(c *http.Client, want int, method, url string, body any) (int64, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return 0, fmt.Errorf("%s %s = %d %s, want %d", method, url, resp.StatusCode, rb, want)
	}
	return strconv.ParseInt(resp.Header.Get("X-Datakit-Config-Revision"), 10, 64)
}

// TestT39ConcurrentAdminWrites: on SQLite and PostgreSQL, (1) two clients
// PATCH different fields of one entity at once: neither update is lost;
// (2) 50 goroutines create consumers, update their own and all update one
// shared consumer. Every write is acknowledged (no 500, no conflict), the
// acknowledged revisions are exactly base+1…base+n, and the stored state
// equals the writes replayed in revision order. The catalogue's 100 writes
// per goroutine are scaled to 20 (1 000 writes per engine) to bound the
// test's time on a shared machine.
func TestT39ConcurrentAdminWrites(t *testing.T) {
	engines := []struct {
		name     string
		settings func(t *testing.T) []string
	}{
		{"sqlite", func(t *testing.T) []string {
			return []string{"database=sqlite", "sqlite_path=" + filepath.Join(t.TempDir(), "datakit.db")}
		}},
		{"postgres", func(t *testing.T) []string { return newPGDatabase(t).settings() }},
	}
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			n := startTestNode(t, eng.settings(t)...)
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			testConcurrentPatch(t, client, n.admin)
			testConcurrentWriters(t, client, n.admin)
		})
	}
}

// testConcurrentPatch: two clients PATCH retries and tags of one service,
// 50 times each, at once; the end state holds both clients' last values.
func testConcurrentPatch(t *testing.T, c *http.Client, adminURL string) {
	const rounds = 50
	if _, err := adminWrite(c, 201, "POST", adminURL+"/services", map[string]any{"name": "shared", "host": "shared.test"}); err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	errs := make(chan error, 2)
	patch := func(field string, value func(i int) any) {
		<-start
		for i := 1; i <= rounds; i++ {
			if _, err := adminWrite(c, 200, "PATCH", adminURL+"/services/shared", map[string]any{field: value(i)}); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}
	go patch("retries", func(i int) any { return i })
	go patch("tags", func(i int) any { return []string{fmt.Sprintf("t%d", i)} })
	close(start)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	_, b := mustCall(t, 200, "GET", adminURL+"/services/shared", nil)
	var svc struct {
		Retries int      `json:"retries"`
		Tags    []string `json:"tags"`
		Host    string   `json:"host"`
	}
	if err := json.Unmarshal(b, &svc); err != nil || svc.Retries != rounds || len(svc.Tags) != 1 || svc.Tags[0] != fmt.Sprintf("t%d", rounds) || svc.Host != "shared.test" {
		t.Errorf("service after two concurrent PATCH streams = %s, want retries %d and tags [t%d]: an update was lost", b, rounds, rounds)
	}
}

// testConcurrentWriters is T39's second half.
func testConcurrentWriters(t *testing.T, c *http.Client, adminURL string) {
	const writers, perWriter = 50, 20
	base, err := adminWrite(c, 201, "POST", adminURL+"/consumers", map[string]any{"username": "hot"})
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan []ackedWrite, writers)
	errs := make(chan error, writers)
	start := make(chan struct{})
	began := time.Now()
	for g := range writers {
		go func() {
			<-start
			var acked []ackedWrite
			own := ""
			for i := range perWriter {
				var (
					rev  int64
					err  error
					w    ackedWrite
					body = map[string]any{}
				)
				switch i % 3 {
				case 0:
					own = fmt.Sprintf("c%d-%d", g, i)
					w = ackedWrite{entity: own, customID: "created-" + own}
					body = map[string]any{"username": own, "custom_id": w.customID}
					rev, err = adminWrite(c, 201, "POST", adminURL+"/consumers", body)
				case 1:
					w = ackedWrite{entity: own, customID: fmt.Sprintf("updated-%s-%d", own, i)}
					body["custom_id"] = w.customID
					rev, err = adminWrite(c, 200, "PATCH", adminURL+"/consumers/"+own, body)
				default:
					w = ackedWrite{entity: "hot", customID: fmt.Sprintf("hot-%d-%d", g, i)}
					body["custom_id"] = w.customID
					rev, err = adminWrite(c, 200, "PATCH", adminURL+"/consumers/hot", body)
				}
				if err != nil {
					errs <- err
					results <- acked
					return
				}
				w.revision = rev
				acked = append(acked, w)
			}
			errs <- nil
			results <- acked
		}()
	}
	close(start)
	var all []ackedWrite
	for range writers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		all = append(all, <-results...)
	}
	took := time.Since(began)
	if t.Failed() {
		return
	}
	// Revisions: exactly base+1 … base+len(all), one per acknowledged write.
	slices.SortFunc(all, func(a, b ackedWrite) int { return cmp.Compare(a.revision, b.revision) })
	for i, w := range all {
		if want := base + int64(i) + 1; w.revision != want {
			t.Fatalf("acknowledged revisions (sorted) hold %d where %d belongs: duplicates or gaps", w.revision, want)
		}
	}
	// Replay in revision order; the store must hold the result.
	want := map[string]string{}
	for _, w := range all {
		want[w.entity] = w.customID
	}
	stored := map[string]string{}
	for _, c := range listAll(t, adminURL, "consumers") {
		id, _ := c["custom_id"].(string)
		stored[c["username"].(string)] = id
	}
	if len(stored) != len(want) {
		t.Errorf("%d consumers stored, want %d", len(stored), len(want))
	}
	for name, id := range want {
		if stored[name] != id {
			t.Errorf("consumer %s custom_id = %q, want %q (the write with the highest revision)", name, stored[name], id)
		}
	}
	last := all[len(all)-1].revision
	waitFor(t, func() bool { return revisionOf(adminURL) >= last })
	t.Logf("%d writes from %d goroutines in %v (%.0f/s); revisions %d…%d", len(all), writers, took.Round(time.Millisecond),
		float64(len(all))/took.Seconds(), base+1, last)
}

// sqliteTestPragmas are per-connection pragmas set on the SQLite files the
// tests name (path → pragmas): max_page_count and query_only apply to a
// connection, not to the file, so one connection hook sets them as each of
// the store's connections opens.
var (
	sqliteTestPragmas  sync.Map
	registerSQLiteHook sync.Once
)

// setSQLitePragmas runs pragmas on every connection opened to path from now
// until the test ends.
func setSQLitePragmas(t *testing.T, path string, pragmas ...string) {
	registerSQLiteHook.Do(func() {
		sqlite.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, dsn string) error {
			file, _, _ := strings.Cut(dsn, "?")
			v, ok := sqliteTestPragmas.Load(file)
			if !ok {
				return nil
			}
			for _, p := range v.([]string) {
				if _, err := conn.ExecContext(context.Background(), "PRAGMA "+p, nil); err != nil {
					return err
				}
			}
			return nil
		})
	})
	sqliteTestPragmas.Store(path, pragmas)
	t.Cleanup(func() { sqliteTestPragmas.Delete(path) })
}

// storeWithService creates a SQLite store at path holding a service routed
// at / to upstream, and returns the file's page count.
func storeWithService(t *testing.T, path, upstream string) int {
	t.Helper()
	ctx := context.Background()
	s, err := store.OpenSQLite(ctx, store.SQLiteOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ents, err := config.LoadDeclarative([]byte(kongYML(upstream)), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, ents); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pages int
	if err := db.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	return pages
}

// storeWithConsumers creates a SQLite store at path holding n consumers
// with 2 KiB custom_ids.
func storeWithConsumers(t *testing.T, path string, n int) {
	t.Helper()
	ctx := context.Background()
	s, err := store.OpenSQLite(ctx, store.SQLiteOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close() //nolint:errcheck // test setup
	var doc strings.Builder
	doc.WriteString("_format_version: \"3.0\"\nconsumers:\n")
	for i := range n {
		fmt.Fprintf(&doc, "  - {username: u%d, custom_id: c%d%s}\n", i, i, strings.Repeat("z", 2048))
	}
	ents, err := config.LoadDeclarative([]byte(doc.String()), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, ents); err != nil {
		t.Fatal(err)
	}
}

// fillUntilRefused writes consumers with 2 KiB custom_ids until a write is
// refused with 503, at most limit writes; it returns the acknowledged names
// and the refusal's body.
func fillUntilRefused(t *testing.T, adminURL string, limit int) (acked []string, refusal string) {
	t.Helper()
	pad := strings.Repeat("x", 2048)
	for i := range limit {
		name := fmt.Sprintf("fill-%d", i)
		code, _, body, err := call("POST", adminURL+"/consumers", map[string]any{"username": name, "custom_id": name + pad})
		switch {
		case err != nil:
			t.Fatalf("POST /consumers %s: %v", name, err)
		case code == 201:
			acked = append(acked, name)
		case code == 503:
			return acked, string(body)
		default:
			t.Fatalf("POST /consumers %s = %d %.300s, want 201 until the store is full, then 503", name, code, body)
		}
	}
	t.Fatalf("%d writes accepted: the store never filled up", limit)
	return nil, ""
}

// checkStorageRefusal: after a 503, what was acknowledged is stored, the
// proxy serves the previous configuration, readiness holds, further writes
// are refused the same way, and the node's snapshot is the last committed
// revision.
func checkStorageRefusal(t *testing.T, n *testNode, acked []string, refusal, want string) {
	t.Helper()
	if !jsonEq(refusal, `{"message":"`+want+`"}`) {
		t.Errorf("refused write = %s, want 503 %q", refusal, want)
	}
	for _, name := range acked {
		mustCall(t, 200, "GET", n.admin+"/consumers/"+name, nil)
	}
	if got := len(listAll(t, n.admin, "consumers")); got != len(acked) {
		t.Errorf("%d consumers stored, want the %d acknowledged", got, len(acked))
	}
	for i := range 3 {
		if code, body, err := fetch(n.proxy + "/"); code != 200 || body != "previous" {
			t.Errorf("proxy request %d after the refusal = %d %q %v, want the previous configuration", i, code, body, err)
		}
	}
	if code, _, _ := fetch(n.status + "/status/ready"); code != 200 {
		t.Errorf("/status/ready after the refusal = %d, want 200", code)
	}
	code, _, body, err := call("POST", n.admin+"/consumers", map[string]any{"username": "after", "custom_id": strings.Repeat("y", 4096)})
	if err != nil || code != 503 || !jsonEq(string(body), `{"message":"`+want+`"}`) {
		t.Errorf("a write after the refusal = %d %.300s %v, want 503 %q", code, body, err, want)
	}
}

func jsonEq(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

// TestT43DiskFullOrReadOnlyStore: a SQLite store that cannot grow (PRAGMA
// max_page_count; a full 1 MiB tmpfs) or cannot be written (query_only)
// refuses writes with 503 `storage unavailable: …` while what was committed
// stays stored and served; a `config export` into a full tmpfs leaves no
// file. The tmpfs cases need mount(2) and are skipped where it is not
// permitted.
func TestT43DiskFullOrReadOnlyStore(t *testing.T) {
	up := upstreamSaying(t, "previous", 0)
	t.Run("max_page_count", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "datakit.db")
		pages := storeWithService(t, path, up)
		setSQLitePragmas(t, path, fmt.Sprintf("max_page_count = %d", pages+20))
		n := startTestNode(t, "database=sqlite", "sqlite_path="+path)
		acked, refusal := fillUntilRefused(t, n.admin, 200)
		checkStorageRefusal(t, n, acked, refusal, "storage unavailable: disk full")
		t.Logf("%d writes acknowledged before the store was full", len(acked))
		n.stop()
		checkQuickCheck(t, path)
	})
	t.Run("read-only", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "datakit.db")
		storeWithService(t, path, up)
		setSQLitePragmas(t, path, "query_only = 1")
		n := startTestNode(t, "database=sqlite", "sqlite_path="+path)
		acked, refusal := fillUntilRefused(t, n.admin, 1)
		checkStorageRefusal(t, n, acked, refusal, "storage unavailable: read-only database")
	})
	t.Run("tmpfs", func(t *testing.T) {
		dir := mountTmpfs(t, "1m")
		path := filepath.Join(dir, "datakit.db")
		storeWithService(t, path, up)
		n := startTestNode(t, "database=sqlite", "sqlite_path="+path)
		acked, refusal := fillUntilRefused(t, n.admin, 1000)
		checkStorageRefusal(t, n, acked, refusal, "storage unavailable: disk full")
		t.Logf("%d writes acknowledged before the 1 MiB tmpfs was full", len(acked))
		n.stop()
		checkQuickCheck(t, path)

		// An export larger than a 1 MiB tmpfs fails and leaves nothing.
		big := filepath.Join(t.TempDir(), "big.db")
		storeWithConsumers(t, big, 600)
		out := mountTmpfs(t, "1m")
		target := filepath.Join(out, "kong.yml")
		code, _, stderr := runCLI(t, "config", "export", "--set", "sqlite_path="+big, target)
		if code != 1 || !strings.Contains(stderr, "no space left on device") {
			t.Errorf("config export into a full tmpfs = %d %q, want 1 and ENOSPC", code, stderr)
		}
		if entries, err := os.ReadDir(out); err != nil || len(entries) != 0 {
			t.Errorf("after the failed export the tmpfs holds %v (%v), want nothing", entries, err)
		}
	})
}

// mountTmpfs mounts a tmpfs of size on a fresh directory until the test
// ends, or skips the test where mounting is not permitted.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount -t tmpfs not permitted here (%v: %s); skipping the tmpfs case", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}
