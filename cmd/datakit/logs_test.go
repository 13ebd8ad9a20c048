package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/settings"
)

// syncBuffer is a log destination shared by request goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsCarryNoSecrets runs a node with debug logging and an access log
// through requests carrying credentials, a vault secret that a failing node
// quotes, and a query token, then greps everything logged for them
// (gateway.md §11.2); it also checks the access records.
func TestLogsCarryNoSecrets(t *testing.T) {
	t.Setenv("PLANTED_VAULT", "planted-vault-456")
	up := upstreamSaying(t, "ok", 0)
	doc := `_format_version: "3.0"
consumers: [{username: alice, keyauth_credentials: [{key: planted-apikey-123}]}]
services:
  - name: api
    url: ` + up + `
    routes:
      - name: open
        paths: ["/open"]
      - name: keyed
        paths: ["/keyed"]
        plugins: [{name: key-auth}]
      - name: failing
        paths: ["/failing"]
        plugins:
          - name: datakit
            config:
              resources: {vault: {t: "{vault://env/planted-vault}"}}
              nodes:
                - {name: FAIL, type: jq, input: vault.t, jq: 'error(.)'}
`
	st, err := settings.Load(settings.LoadOptions{SearchPaths: []string{}, Overrides: []string{
		"database=off", "declarative_config_string=" + doc, "log_level=debug", "log_format=json",
		"admin_token=planted-admin-token-0123456789", "proxy_listen=127.0.0.1:0",
		"status_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	n, err := newNode(st, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	srv := httptest.NewServer(n.gw.Handler(gateway.Listener{Port: 8000}))
	defer srv.Close()
	send := func(path string, h http.Header) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	creds := http.Header{"Authorization": {"Bearer planted-auth-789"}, "Cookie": {"session=planted-cookie-321"}}
	codes := []int{
		send("/open?token=planted-query-000", creds),
		send("/keyed", http.Header{"Apikey": {"planted-apikey-123"}}),
		send("/keyed", http.Header{"Apikey": {"planted-wrong-key-654"}}),
		send("/failing", creds),
		send("/nowhere", nil),
	}
	if want := []int{200, 200, 401, 500, 404}; fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("statuses = %v, want %v", codes, want)
	}
	out := logs.String()
	for _, secret := range []string{"planted-vault-456", "planted-auth-789", "planted-cookie-321", "planted-query-000",
		"planted-apikey-123", "planted-wrong-key-654", "planted-admin-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs contain %q:\n%s", secret, out)
		}
	}
	var access []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "access" {
			access = append(access, rec)
		}
	}
	if len(access) != 5 {
		t.Fatalf("%d access records, want 5:\n%s", len(access), out)
	}
	first := access[0]
	if first["path"] != "/open" || first["status"] != float64(200) || first["route"] != "open" || first["service"] != "api" ||
		first["source"] != "service" || first["request_id"] == "" || first["bytes_out"] != float64(2) {
		t.Errorf("first access record = %v", first)
	}
	if access[1]["consumer"] != "alice" || access[4]["status"] != float64(404) || access[3]["status"] != float64(500) {
		t.Errorf("access records = %v", access)
	}
	if !strings.Contains(out, `"msg":"datakit node failed"`) || !strings.Contains(out, `********`) {
		t.Errorf("the node failure is not logged with its secret masked:\n%s", out)
	}
}
