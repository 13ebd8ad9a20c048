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

// FuzzQuery sends arbitrary query strings through the real handler: a
// request it proxies reaches the upstream with the query bytes it was sent
// (hardening.md T08); any other answer is a refusal (400, 414).
func FuzzQuery(f *testing.F) {
	for _, q := range []string{"a=%x&b=ok", "a=1;b=2", "", "&&", "x=%20&y=a+b&&z", "a=%zz%", "c=%23", "a=b=c&%26=%3D",
		strings.Repeat("a&", 1000) + "hidden=1", "%E2%82%AC=%e2%82%ac", "a=\x7f"} {
		f.Add(q)
	}
	up := newUpstream(f, nil)
	ents, err := config.LoadDeclarative([]byte(serviceDoc(up, "", "      - {name: r, paths: [/]}\n")), config.LoadOptions{})
	if err != nil {
		f.Fatal(err)
	}
	snap, err := gateway.Build(context.Background(), ents, gateway.BuildOptions{})
	if err != nil {
		f.Fatal(err)
	}
	var sent string // the upstream request's query; the handler runs on the fuzz goroutine
	g := gateway.New(gateway.Options{Version: "fuzz", Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		sent = r.URL.RawQuery
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})})
	g.Swap(snap)
	h := g.Handler(gateway.Listener{Port: 8000})
	f.Fuzz(func(t *testing.T, query string) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET /p?" + query + " HTTP/1.1\r\nHost: fuzz.test\r\n\r\n")))
		if err != nil {
			return // net/http would have refused it before the handler
		}
		req.RemoteAddr = "127.0.0.1:1234"
		sent = "\x00unset"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if sent != req.URL.RawQuery {
				t.Fatalf("query %q reached the upstream as %q", req.URL.RawQuery, sent)
			}
		case http.StatusBadRequest, http.StatusRequestURITooLong:
		default:
			t.Fatalf("query %q: status %d", query, rec.Code)
		}
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
