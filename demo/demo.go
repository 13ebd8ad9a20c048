// Package demo is `datakit demo`: the demo configuration and the loopback
// mock services it talks to (a token service and an echo upstream).
package demo

import (
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

//go:embed kong.yml
var configTemplate string

// Services are the running mock services.
type Services struct {
	Token, Upstream string // base URLs
	servers         []*http.Server
}

// Start runs the mock services on loopback ports chosen by the kernel.
func Start() (*Services, error) {
	s := &Services{}
	var err error
	if s.Token, err = s.serve(http.HandlerFunc(tokenService)); err != nil {
		return nil, err
	}
	if s.Upstream, err = s.serve(http.HandlerFunc(echoUpstream)); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Services) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	// The mock services are loopback only, but still bounded like every listener.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Close stops the services.
func (s *Services) Close() {
	for _, srv := range s.servers {
		_ = srv.Close()
	}
}

// Config is the demo's declarative configuration wired to the services.
func (s *Services) Config() []byte {
	return []byte(strings.NewReplacer("{{TOKEN}}", s.Token, "{{UPSTREAM}}", s.Upstream).Replace(configTemplate))
}

// tokenService answers POST /auth-token with a fresh bearer token.
func tokenService(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/auth-token" {
		http.NotFound(w, r)
		return
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	writeJSON(w, map[string]any{"token_type": "Bearer", "access_token": hex.EncodeToString(b[:]), "expires_in": 300})
}

// echoUpstream is a tiny httpbin: /json, /uuid, and everything else echoes
// the request it received.
func echoUpstream(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/json":
		writeJSON(w, map[string]any{"slideshow": map[string]any{"author": "Yours Truly", "title": "Sample Slide Show"}})
	case "/uuid":
		var b [16]byte
		_, _ = rand.Read(b[:])
		writeJSON(w, map[string]any{"uuid": hex.EncodeToString(b[:])})
	default:
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		headers := map[string]string{}
		for k := range r.Header {
			headers[k] = r.Header.Get(k)
		}
		writeJSON(w, map[string]any{"method": r.Method, "url": r.URL.String(), "headers": headers, "body": string(body)})
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
