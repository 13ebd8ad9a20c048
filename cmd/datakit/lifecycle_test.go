package main

import (
	"context"
	"io"
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

// startNode runs a DB-less node from a declarative file until the test sends
// it a signal; it returns the proxy and status base URLs and the exit status
// channel.
func startNode(t *testing.T, file string, extra ...string) (proxy, status string, exit <-chan int) {
	t.Helper()
	return startNodeWith(t, append([]string{"database=off", "declarative_config=" + file, "proxy_listen=127.0.0.1:0",
		"status_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0", "log_level=error"}, extra...), nil)
}

// startNodeWith runs a node with these settings; all its bound addresses
// (proxy, status, admin) go to addrs when non-nil.
func startNodeWith(t *testing.T, overrides []string, addrs *[]string) (proxy, status string, exit <-chan int) {
	t.Helper()
	st, err := settings.Load(settings.LoadOptions{SearchPaths: []string{}, Overrides: overrides})
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNode(st, newLogger(st, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	bound := make(chan []string, 1)
	done := make(chan int, 1)
	go func() { done <- n.run(context.Background(), func(a []string) { bound <- a }) }()
	select {
	case a := <-bound:
		if addrs != nil {
			*addrs = a
		}
		return "http://" + a[0], "http://" + a[1], done
	case code := <-done:
		t.Fatalf("node exited with %d before it was ready", code)
	}
	return "", "", nil
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

// TestT46ReloadWithoutDroppingConnections: SIGHUP swaps the configuration while clients keep
// sending requests; none fails, and the new configuration takes over.
func TestT46ReloadWithoutDroppingConnections(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kong.yml")
	a, b := upstreamSaying(t, "A", 0), upstreamSaying(t, "B", 0)
	if err := os.WriteFile(file, []byte(kongYML(a)), 0o644); err != nil {
		t.Fatal(err)
	}
	proxy, _, exit := startNode(t, file)

	var failed, sawB atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, body, err := fetch(proxy + "/")
				switch {
				case err != nil || code != 200 || (body != "A" && body != "B"):
					failed.Add(1)
				case body == "B":
					sawB.Add(1)
				}
			}
		}()
	}
	for i := range 10 {
		target := a
		if i%2 == 0 {
			target = b
		}
		if err := os.WriteFile(file, []byte(kongYML(target)), 0o644); err != nil {
			t.Fatal(err)
		}
		signalSelf(t, syscall.SIGHUP)
		time.Sleep(20 * time.Millisecond) // let requests flow between reloads
	}
	// A broken file is refused and the running configuration stays.
	if err := os.WriteFile(file, []byte("_format_version: \"3.0\"\nservices: [{name: s}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	signalSelf(t, syscall.SIGHUP)
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || sawB.Load() == 0 {
		t.Errorf("during reloads: %d failed requests, %d answered by the new configuration", failed.Load(), sawB.Load())
	}
	if code, _, err := fetch(proxy + "/"); err != nil || code != 200 {
		t.Errorf("after a refused reload: %d %v, want the old configuration serving", code, err)
	}
	signalSelf(t, syscall.SIGTERM)
	if code := <-exit; code != 0 {
		t.Errorf("exit status after SIGTERM = %d, want 0", code)
	}
}

// TestT44GracefulShutdownDrains: on SIGTERM readiness turns 503 at once, the request in
// flight completes, and the node exits 0.
func TestT44GracefulShutdownDrains(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kong.yml")
	slow := upstreamSaying(t, "done", 300*time.Millisecond)
	if err := os.WriteFile(file, []byte(kongYML(slow)), 0o644); err != nil {
		t.Fatal(err)
	}
	proxy, status, exit := startNode(t, file, "drain_delay=200ms", "drain_timeout=5s")
	if code, _, _ := fetch(status + "/status/ready"); code != 200 {
		t.Fatalf("ready before drain = %d", code)
	}
	inflight := make(chan string, 1)
	go func() {
		code, body, err := fetch(proxy + "/")
		if err != nil || code != 200 {
			inflight <- "failed"
			return
		}
		inflight <- body
	}()
	time.Sleep(50 * time.Millisecond) // the request is at the upstream
	signalSelf(t, syscall.SIGTERM)
	time.Sleep(50 * time.Millisecond)
	if code, body, _ := fetch(status + "/status/ready"); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("ready while draining = %d %s, want 503 draining", code, body)
	}
	if got := <-inflight; got != "done" {
		t.Errorf("in-flight request = %q, want it completed", got)
	}
	if code := <-exit; code != 0 {
		t.Errorf("exit status = %d, want 0", code)
	}
}
