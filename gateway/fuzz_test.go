package gateway_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
)

// FuzzIntake sends arbitrary request-targets, header names and values
// through the real handler: it must never panic and always answer.
func FuzzIntake(f *testing.F) {
	f.Add("GET", "/", "X-Test", "1")
	f.Add("GET", "/a/../b?x=1&&y", "Connection", "x-test, upgrade")
	f.Add("POST", "/%2e%2e/%00", "Upgrade", "websocket")
	f.Add("TRACE", "*", "X_Under", "v")
	f.Add("GET", "http://h.test/p?q", "X-Forwarded-For", "1.2.3.4, ::1")
	f.Add("GET", "/"+strings.Repeat("a", 9000), "Accept", "text/html;q=abc, */*;q=0.5")
	up := newUpstream(f, nil)
	ents, err := config.LoadDeclarative([]byte(serviceDoc(up, "", "      - {name: r, paths: [/]}\n")), config.LoadOptions{})
	if err != nil {
		f.Fatal(err)
	}
	snap, err := gateway.Build(context.Background(), ents, gateway.BuildOptions{})
	if err != nil {
		f.Fatal(err)
	}
	g := gateway.New(gateway.Options{Version: "fuzz", TrustedIPs: loopback})
	g.Swap(snap)
	h := g.Handler(gateway.Listener{Port: 8000})
	f.Fuzz(func(t *testing.T, method, target, name, value string) {
		raw := method + " " + target + " HTTP/1.1\r\nHost: fuzz.test\r\n" + name + ": " + value + "\r\nContent-Length: 0\r\n\r\n"
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // net/http would have refused it before the handler
		}
		req.RemoteAddr = "127.0.0.1:1234"
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { defer close(done); h.ServeHTTP(rec, req) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Fatalf("%q: no answer", raw)
		}
		if rec.Code < 100 || rec.Header().Get("X-Kong-Request-Id") == "" && rec.Code != http.StatusSwitchingProtocols {
			t.Fatalf("%q: status %d, headers %v", raw, rec.Code, rec.Header())
		}
	})
}
