package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func postJSON(t *testing.T, url string, v any) *http.Response {
	t.Helper()
	b, _ := json.Marshal(v)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestSQLiteModeAdminWrites: in the default database mode, entities created
// through the Admin API are served by the proxy once the node rebuilt its
// snapshot from the store, and survive a restart.
func TestSQLiteModeAdminWrites(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "datakit.db")
	up := upstreamSaying(t, "from upstream", 0)
	start := func() (proxy, status, adminURL string, exit <-chan int) {
		st := []string{"database=sqlite", "sqlite_path=" + dbPath, "proxy_listen=127.0.0.1:0",
			"status_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0", "log_level=error",
			"db_update_frequency=200ms", "db_update_debounce=10ms"}
		var addrs []string
		p, s, e := startNodeWith(t, st, &addrs)
		return p, s, "http://" + addrs[2], e
	}
	proxy, _, adminURL, exit := start()
	if resp := postJSON(t, adminURL+"/services", map[string]any{"name": "svc", "url": up}); resp.StatusCode != 201 {
		t.Fatalf("POST /services = %d", resp.StatusCode)
	}
	resp := postJSON(t, adminURL+"/services/svc/routes", map[string]any{"name": "r", "paths": []string{"/"}})
	if resp.StatusCode != 201 || resp.Header.Get("X-Datakit-Config-Revision") == "" {
		t.Fatalf("POST /services/svc/routes = %d, revision %q", resp.StatusCode, resp.Header.Get("X-Datakit-Config-Revision"))
	}
	waitFor(t, func() bool { code, body, _ := fetch(proxy + "/"); return code == 200 && body == "from upstream" })

	signalSelf(t, syscall.SIGTERM)
	if code := <-exit; code != 0 {
		t.Fatalf("exit status %d", code)
	}
	// The configuration is durable: a restarted node serves it at once.
	proxy, _, _, exit = start()
	if code, body, _ := fetch(proxy + "/"); code != 200 || body != "from upstream" {
		t.Errorf("after restart: %d %q", code, body)
	}
	signalSelf(t, syscall.SIGTERM)
	<-exit
}

// waitFor polls cond for up to 5 s: configuration propagates asynchronously.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
