package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/gateway/settings"
)

// startNodeWith runs a node with these settings; all its bound addresses
// (proxy, status, admin) go to addrs when non-nil.
func startNodeWith(t *testing.T, overrides []string, addrs *[]string) (proxy, status string, exit <-chan int) {
	t.Helper()
	a, exit := startNodeLogging(t, overrides, io.Discard)
	if addrs != nil {
		*addrs = a
	}
	return "http://" + a[0], "http://" + a[1], exit
}

// startNodeLogging runs a node with these settings, its log going to w, and
// returns its bound addresses (proxy, status, admin) once they are bound.
// The node runs until the test signals the process.
func startNodeLogging(t *testing.T, overrides []string, w io.Writer) (addrs []string, exit <-chan int) {
	t.Helper()
	st, err := settings.Load(settings.LoadOptions{SearchPaths: []string{}, Overrides: overrides})
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNode(st, newLogger(st, w))
	if err != nil {
		t.Fatal(err)
	}
	bound := make(chan []string, 1)
	done := make(chan int, 1)
	go func() { done <- n.run(context.Background(), func(a []string) { bound <- a }) }()
	select {
	case a := <-bound:
		return a, done
	case code := <-done:
		t.Fatalf("node exited with %d before it was ready", code)
	}
	return nil, nil
}

func upstreamSaying(t *testing.T, word string, delay time.Duration) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		_, _ = io.WriteString(w, word)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func kongYML(upstream string) string {
	return "_format_version: \"3.0\"\nservices:\n  - name: s\n    url: " + upstream + "\n    routes: [{name: r, paths: [\"/\"]}]\n"
}

func signalSelf(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
}

func fetch(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// keepAliveClient is one client on one kept-alive connection; dials counts
// the connections it had to open.
type keepAliveClient struct {
	*http.Client
	dials atomic.Int64
}

func newKeepAliveClient() *keepAliveClient {
	c := &keepAliveClient{}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c.Client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c.dials.Add(1)
			return d.DialContext(ctx, network, addr)
		}}}
	return c
}

// TestT46ReloadWithoutDroppingConnections: 16 keep-alive clients send
// requests while the configuration reloads 60 times, alternately through
// the Admin API (POST /config) and SIGHUP. No request fails, every client
// keeps the one connection it opened, the reloaded configurations take
// over, and a refused reload (a broken file) keeps the running one. (The
// load half, 100 clients under wrk, is scripts/hardening/t46-*.sh.)
func TestT46ReloadWithoutDroppingConnections(t *testing.T) {
	const clients, reloads = 16, 60
	file := filepath.Join(t.TempDir(), "kong.yml")
	a, b := upstreamSaying(t, "A", 0), upstreamSaying(t, "B", 0)
	if err := os.WriteFile(file, []byte(kongYML(a)), 0o644); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	proxy, _, exit := startNodeWith(t, []string{"database=off", "declarative_config=" + file, "proxy_listen=127.0.0.1:0",
		"status_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0", "log_level=error"}, &addrs)
	adminURL := "http://" + addrs[2]

	var failed, answered atomic.Int64
	var firstFailure atomic.Value
	seen := [2]atomic.Int64{} // answers by A, by B
	var wg sync.WaitGroup
	stop := make(chan struct{})
	pool := make([]*keepAliveClient, clients)
	for i := range pool {
		pool[i] = newKeepAliveClient()
		wg.Add(1)
		go func(c *keepAliveClient) {
			defer wg.Done()
			defer c.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(proxy + "/")
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				switch {
				case err != nil || resp.StatusCode != 200 || (string(body) != "A" && string(body) != "B"):
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%v %q", err, body))
				case string(body) == "A":
					seen[0].Add(1)
				default:
					seen[1].Add(1)
				}
				answered.Add(1)
			}
		}(pool[i])
	}
	for i := range reloads {
		target := a
		if i%2 == 0 {
			target = b
		}
		if i%4 < 2 {
			mustCall(t, 201, "POST", adminURL+"/config", map[string]any{"config": kongYML(target)})
		} else {
			if err := os.WriteFile(file, []byte(kongYML(target)), 0o644); err != nil {
				t.Fatal(err)
			}
			signalSelf(t, syscall.SIGHUP)
		}
		// Let requests flow between reloads: each configuration serves some.
		for n := answered.Load(); answered.Load() < n+clients; {
			time.Sleep(time.Millisecond)
		}
	}
	// A broken file is refused and the running configuration stays.
	if err := os.WriteFile(file, []byte("_format_version: \"3.0\"\nservices: [{name: s}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	signalSelf(t, syscall.SIGHUP)
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || seen[0].Load() == 0 || seen[1].Load() == 0 {
		t.Errorf("during %d reloads: %d failed requests (first: %v); %d answered by A, %d by B",
			reloads, failed.Load(), firstFailure.Load(), seen[0].Load(), seen[1].Load())
	}
	for i, c := range pool {
		if n := c.dials.Load(); n != 1 {
			t.Errorf("client %d opened %d connections, want 1: reloads must not close connections", i, n)
		}
	}
	t.Logf("%d requests on %d connections across %d reloads", answered.Load(), clients, reloads)
	if code, _, err := fetch(proxy + "/"); err != nil || code != 200 {
		t.Errorf("after a refused reload: %d %v, want the old configuration serving", code, err)
	}
	signalSelf(t, syscall.SIGTERM)
	if code := <-exit; code != 0 {
		t.Errorf("exit status after SIGTERM = %d, want 0", code)
	}
}

// gatedUpstream answers after delay; arrived receives one value per request
// as it arrives, so a test knows what is in flight.
func gatedUpstream(t *testing.T, delay time.Duration) (url string, arrived <-chan struct{}) {
	t.Helper()
	ch := make(chan struct{}, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- struct{}{}
		select {
		case <-time.After(delay):
			_, _ = io.WriteString(w, "done")
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ch
}

// receive waits for n values from ch, failing after 10 s.
func receive(t *testing.T, ch <-chan struct{}, n int) {
	t.Helper()
	for range n {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("fewer than %d requests reached the upstream within 10 s", n)
		}
	}
}

// freshGet sends one request on a new connection.
func freshGet(url string) (int, string, error) {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestT44GracefulShutdownDrains: on SIGTERM readiness turns 503 at once, new
// connections are served for drain_delay and refused after it, every
// accepted request completes with 200, and the node exits 0. With requests
// outlasting drain_timeout they are aborted, counted in `drain timeout: N
// requests aborted`, and the node still exits 0. drain_delay is the
// catalogue's 2 s; the upstream takes 1 s instead of 2 and 20 clients
// stand for its 50, to keep the test short.
func TestT44GracefulShutdownDrains(t *testing.T) {
	t.Run("drain", func(t *testing.T) {
		const delay, slowness, clients = 2 * time.Second, time.Second, 20
		file := filepath.Join(t.TempDir(), "kong.yml")
		slow, arrived := gatedUpstream(t, slowness)
		if err := os.WriteFile(file, []byte(kongYML(slow)), 0o644); err != nil {
			t.Fatal(err)
		}
		logs := &syncBuffer{}
		addrs, exit := startNodeLogging(t, []string{"database=off", "declarative_config=" + file, "proxy_listen=127.0.0.1:0",
			"status_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0", "drain_delay=" + delay.String(), "drain_timeout=10s"}, logs)
		proxy, status := "http://"+addrs[0], "http://"+addrs[1]
		if code, _, _ := fetch(status + "/status/ready"); code != 200 {
			t.Fatalf("ready before drain = %d", code)
		}
		results := make(chan string, clients+1)
		get := func() {
			code, body, err := freshGet(proxy + "/")
			results <- fmt.Sprintf("%d %s %v", code, body, err)
		}
		for range clients {
			go get()
		}
		receive(t, arrived, clients)
		signalSelf(t, syscall.SIGTERM)
		sent := time.Now()
		waitFor(t, func() bool {
			code, body, _ := fetch(status + "/status/ready")
			return code == 503 && strings.Contains(body, "draining")
		})
		t.Logf("/status/ready turned 503 %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
		// Within drain_delay a new connection is still served.
		if time.Since(sent) > delay/2 {
			t.Fatalf("readiness took %v, over half of drain_delay: cannot check serving during the delay", time.Since(sent))
		}
		go get()
		receive(t, arrived, 1)
		// After it, connections are refused.
		refused := func() bool {
			c, err := net.DialTimeout("tcp", addrs[0], time.Second)
			if err == nil {
				c.Close()
			}
			return err != nil
		}
		waitFor(t, refused)
		if at := time.Since(sent); at < delay-100*time.Millisecond {
			t.Errorf("connections refused %v after SIGTERM, before drain_delay %v", at, delay)
		}
		for range clients + 1 {
			if got := <-results; got != "200 done <nil>" {
				t.Errorf("accepted request = %s, want 200 done", got)
			}
		}
		if code := <-exit; code != 0 {
			t.Errorf("exit status = %d, want 0", code)
		}
		if strings.Contains(logs.String(), "drain timeout") {
			t.Errorf("log reports a drain timeout:\n%s", logs)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		const inflight, drainTimeout = 3, time.Second
		file := filepath.Join(t.TempDir(), "kong.yml")
		hang, arrived := gatedUpstream(t, time.Minute)
		if err := os.WriteFile(file, []byte(kongYML(hang)), 0o644); err != nil {
			t.Fatal(err)
		}
		logs := &syncBuffer{}
		addrs, exit := startNodeLogging(t, []string{"database=off", "declarative_config=" + file, "proxy_listen=127.0.0.1:0",
			"status_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0", "drain_timeout=" + drainTimeout.String()}, logs)
		failed := make(chan error, inflight)
		for range inflight {
			go func() {
				_, _, err := freshGet("http://" + addrs[0] + "/")
				failed <- err
			}()
		}
		receive(t, arrived, inflight)
		signalSelf(t, syscall.SIGTERM)
		sent := time.Now()
		select {
		case code := <-exit:
			if code != 0 {
				t.Errorf("exit status = %d, want 0", code)
			}
		case <-time.After(drainTimeout + 5*time.Second):
			t.Fatalf("node still running %v after SIGTERM with drain_timeout %v", time.Since(sent), drainTimeout)
		}
		t.Logf("exited %v after SIGTERM (drain_timeout %v)", time.Since(sent).Round(time.Millisecond), drainTimeout)
		for range inflight {
			if err := <-failed; err == nil {
				t.Errorf("a request outlasting drain_timeout completed; want it aborted")
			}
		}
		if want := fmt.Sprintf("drain timeout: %d requests aborted", inflight); !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	})
}
