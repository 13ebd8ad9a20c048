package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/gateway/settings"
)

// canary is a secret no output may show: SECRET-<random hex>.
func canary() string { return "SECRET-" + hex.EncodeToString([]byte(rand.Text()))[:32] }

// runNode serves doc with these extra settings at debug level, logging JSON
// into logs; it returns the proxy, status and admin base URLs and stops the
// node when the test ends.
func runNode(t *testing.T, doc string, logs *syncBuffer, extra ...string) (proxy, status, admin string) {
	t.Helper()
	st, err := settings.Load(settings.LoadOptions{SearchPaths: []string{}, Overrides: append([]string{
		"database=off", "declarative_config_string=" + doc, "log_level=debug", "log_format=json",
		"proxy_listen=127.0.0.1:0", "status_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0"}, extra...)})
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNode(st, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	bound := make(chan []string, 1)
	done := make(chan int, 1)
	go func() { done <- n.run(ctx, func(a []string) { bound <- a }) }()
	t.Cleanup(func() { stop(); <-done })
	select {
	case a := <-bound:
		return "http://" + a[0], "http://" + a[1], "http://" + a[2]
	case code := <-done:
		t.Fatalf("node exited with %d before it was ready", code)
	}
	return "", "", ""
}

// TestT28SecretLeakage sends credentials and lets third parties return
// tokens, through successes and every kind of failure of T15–T20, then
// searches logs at debug level, metrics, every Admin API GET and the error
// bodies for them. Traces appear only with debug: true and the header, with
// credential headers masked.
func TestT28SecretLeakage(t *testing.T) {
	tokenSecret, clientSecret := canary(), canary()
	secrets := []string{tokenSecret, clientSecret}
	var tokenHeaders []http.Header
	third := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenHeaders = append(tokenHeaders, r.Header.Clone()) // one request at a time
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/token":
			_, _ = io.WriteString(w, `{"token_type":"Bearer","access_token":"`+tokenSecret+`"}`)
		case "/403":
			w.WriteHeader(403)
			_, _ = io.WriteString(w, `{"error":"`+tokenSecret+`"}`)
		case "/invalid":
			_, _ = io.WriteString(w, `{"access_token":"`+tokenSecret)
		case "/html":
			_, _ = io.WriteString(w, `<html>`+tokenSecret+`</html>`)
		case "/huge":
			w.(http.Flusher).Flush()
			chunk := strings.Repeat(tokenSecret, 1<<10)
			for range 11 << 20 / len(chunk) {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
		case "/hang":
			<-r.Context().Done()
		case "/503":
			w.WriteHeader(503)
			_, _ = io.WriteString(w, `{"error":"`+tokenSecret+`"}`)
		}
	}))
	t.Cleanup(third.Close)
	upstream := upstreamSaying(t, "ok", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	_ = l.Close()

	exchange := func(debug, token string) string {
		return `
              debug: ` + debug + `
              nodes:
                - {name: TOKEN, type: call, url: ` + third.URL + token + `, timeout: 300}
                - name: AUTH
                  type: jq
                  input: TOKEN.body
                  output: service_request.headers
                  jq: '{Authorization: (.token_type + " " + .access_token)}'
`
	}
	route := func(name, config string) string {
		return `
      - name: ` + name + `
        paths: ["/` + name + `"]
        plugins:
          - name: datakit
            config:` + config
	}
	doc := `_format_version: "3.0"
services:
  - name: api
    url: ` + upstream + `
    routes:` +
		route("ok", exchange("false", "/token")) +
		route("debug", exchange("true", "/token")) +
		route("e403", exchange("true", "/403")) +
		route("invalid", exchange("true", "/invalid")) +
		route("html", exchange("true", "/html")) +
		route("huge", exchange("true", "/huge")) +
		route("hang", exchange("true", "/hang")) +
		route("jwt", `
              debug: true
              nodes:
                - {name: VERIFY, type: jwt_verify, inputs: {token: request.headers.authorization, key: request.query.k}}
`) +
		route("url", `
              debug: true
              nodes:
                - {name: CALL, type: call, inputs: {url: request.headers.x-target}}
`) +
		route("retry", `
              debug: true
              nodes:
                - {name: CALL, type: call, retries: 2, inputs: {url: request.headers.x-target}}
`)
	logs := &syncBuffer{}
	proxy, status, admin := runNode(t, doc, logs, "datakit_call_allow=127.0.0.0/8")

	creds := http.Header{"Authorization": {"Bearer " + clientSecret}, "Cookie": {"session=" + clientSecret},
		"X-Api-Key": {clientSecret}}
	send := func(path string, extra http.Header) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, proxy+path, nil)
		req.Header = creds.Clone()
		for k, v := range extra {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	trace := http.Header{"X-Datakit-Debug-Trace": {"1"}}
	// A JWT whose claims hold the client's secret, signed with no known key.
	jwt := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+clientSecret+`"}`)) + ".c2ln"
	var bodies []string
	for _, tc := range []struct {
		path   string
		header http.Header
		status int
	}{
		{"/ok", nil, 200},
		{"/ok", trace, 200}, // no trace without debug: true
		{"/debug", nil, 200},
		{"/e403", nil, 500},
		{"/invalid", nil, 500},
		{"/html", nil, 500},
		{"/huge", nil, 500},
		{"/hang", nil, 500},
		{"/jwt?k=other-key", http.Header{"Authorization": {"Bearer " + jwt}}, 500},
		{"/url", http.Header{"X-Target": {"http://" + closedAddr + "/?token=" + clientSecret}}, 500},
		{"/url", http.Header{"X-Target": {"http://user:" + clientSecret + "@" + closedAddr + "/"}}, 500},
		{"/url", http.Header{"X-Target": {"http://" + closedAddr + "/" + clientSecret + "?token=" + clientSecret + ":"}}, 500},
		{"/retry", http.Header{"X-Target": {third.URL + "/503?token=" + clientSecret}}, 500},
	} {
		code, body := send(tc.path, tc.header)
		if code != tc.status {
			t.Errorf("GET %s = %d %.300s, want %d", tc.path, code, body, tc.status)
		}
		bodies = append(bodies, "GET "+tc.path+": "+body)
	}

	// The trace: only with debug: true and the header; the credentials
	// masked, the token shown only where the call returned it in its body.
	code, traced := send("/debug", trace)
	var tr struct{ Nodes []any }
	if err := json.Unmarshal([]byte(traced), &tr); code != 200 || err != nil || len(tr.Nodes) == 0 {
		t.Fatalf("traced GET /debug = %d %.300s, want a trace", code, traced)
	}
	if strings.Contains(traced, clientSecret) || strings.Contains(traced, "Bearer "+tokenSecret) || !strings.Contains(traced, `"Authorization":"********"`) {
		t.Errorf("the trace shows a credential header:\n%s", traced)
	}

	for _, h := range tokenHeaders {
		if h.Get("Authorization") != "" || h.Get("Cookie") != "" || h.Get("X-Api-Key") != "" {
			t.Errorf("a call carried the client's credentials: %v", h)
		}
	}

	outputs := map[string]string{"error bodies": strings.Join(bodies, "\n")}
	for _, u := range []string{status + "/metrics", status + "/status", admin + "/metrics"} {
		_, body, err := fetch(u)
		if err != nil {
			t.Fatal(err)
		}
		outputs[u] = body
	}
	for path, body := range adminGETs(t, admin) {
		outputs["admin GET "+path] = body
	}
	outputs["logs"] = logs.String()
	for where, out := range outputs {
		for _, s := range secrets {
			if n := strings.Count(out, s); n > 0 {
				t.Errorf("%s: %d occurrences of the canary:\n%.2000s", where, n, out)
			}
		}
	}
	if len(outputs) < 10 {
		t.Errorf("only %d outputs searched", len(outputs))
	}
}

// adminGETs fetches every GET path the Admin API lists at /endpoints, every
// entity of every listed collection and every plugin's graph.
func adminGETs(t *testing.T, admin string) map[string]string {
	t.Helper()
	out := map[string]string{}
	getJSON := func(path string) string {
		code, body, err := fetch(admin + path)
		if err != nil || code != 200 {
			t.Errorf("admin GET %s = %d, %v", path, code, err)
		}
		out[path] = body
		return body
	}
	var endpoints struct{ Data []string }
	if err := json.Unmarshal([]byte(getJSON("/endpoints")), &endpoints); err != nil || len(endpoints.Data) == 0 {
		t.Fatalf("admin /endpoints: %v", err)
	}
	for _, p := range endpoints.Data {
		if strings.Contains(p, "{") || strings.HasSuffix(p, "/validate") || p == "/" {
			continue
		}
		body := getJSON(p)
		var list struct {
			Data []struct{ ID string } `json:"data"`
		}
		if json.Unmarshal([]byte(body), &list) != nil {
			continue
		}
		for _, e := range list.Data {
			if e.ID == "" {
				continue
			}
			getJSON(p + "/" + e.ID)
			if p == "/plugins" {
				getJSON(p + "/" + e.ID + "/graph")
			}
		}
	}
	getJSON("/")
	return out
}
