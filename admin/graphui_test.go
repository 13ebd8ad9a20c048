package admin_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/datakit-gateway/datakit/admin"
	"github.com/datakit-gateway/datakit/admin/graphui"
)

// viewerHeaders are the headers of every viewer file (gateway.md §4.11).
func viewerHeaders(contentType string) map[string]string {
	return map[string]string{
		"Content-Type":            contentType,
		"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-cache",
	}
}

// TestGraphViewerFiles: the viewer's files need no token, are matched
// exactly on the raw path, and carry the CSP; everything else under /graph
// follows the Admin API's rules.
func TestGraphViewerFiles(t *testing.T) {
	tok := map[string]string{"Kong-Admin-Token": viewerToken}
	e := newEnv(t, "", func(o *admin.Options) { o.AdminToken = viewerToken })
	run(t, e, []behaviour{
		{name: "page without token", req: req{path: "/graph/"}, status: 200, header: viewerHeaders("text/html; charset=utf-8")},
		{name: "page with token", req: req{path: "/graph/", header: tok}, status: 200, header: viewerHeaders("text/html; charset=utf-8")},
		{name: "page with a query", req: req{path: "/graph/?plugin=x"}, status: 200},
		{name: "head", req: req{method: http.MethodHead, path: "/graph/"}, status: 200, body: "-"},
		{name: "script", req: req{path: "/graph/app.js"}, status: 200, header: viewerHeaders("text/javascript; charset=utf-8")},
		{name: "stylesheet", req: req{path: "/graph/style.css"}, status: 200, header: viewerHeaders("text/css; charset=utf-8")},
		{name: "icon", req: req{path: "/graph/icon.svg"}, status: 200, header: viewerHeaders("image/svg+xml")},
		{name: "redirect", req: req{path: "/graph"}, status: 301, header: map[string]string{"Location": "/graph/"}},
		{name: "api still needs the token", req: req{path: "/plugins"}, status: 401, body: unauthBody},
		{name: "percent-escape is not exempt", req: req{path: "/graph/%61pp.js"}, status: 401, body: unauthBody},
		{name: "dot segment is not exempt", req: req{path: "/graph/./app.js"}, status: 401, body: unauthBody},
		{name: "extra slash is not exempt", req: req{path: "/graph//"}, status: 401, body: unauthBody},
		{name: "unknown file", req: req{path: "/graph/nope.js"}, status: 401, body: unauthBody},
		{name: "unknown file with token", req: req{path: "/graph/nope.js", header: tok}, status: 404, body: `{"message":"Not found"}`},
		{name: "extra slash with token", req: req{path: "/graph//", header: tok}, status: 301, header: map[string]string{"Location": "/graph/"}},
		{name: "post is not exempt", req: req{method: http.MethodPost, path: "/graph/"}, status: 401, body: unauthBody},
		{name: "post with token", req: req{method: http.MethodPost, path: "/graph/", header: tok}, status: 405,
			body: `{"message":"Method not allowed"}`, header: map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
	})

	w := e.do(t, req{path: "/graph/app.js"})
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatalf("GET /graph/app.js has no ETag")
	}
	if w := e.do(t, req{path: "/graph/app.js", header: map[string]string{"If-None-Match": etag}}); w.Code != http.StatusNotModified {
		t.Errorf("GET /graph/app.js If-None-Match %s = %d, want 304", etag, w.Code)
	}

	var endpoints struct{ Data []string }
	if w := e.do(t, req{path: "/endpoints", header: tok}); json.Unmarshal(w.Body.Bytes(), &endpoints) != nil ||
		!slices.Contains(endpoints.Data, "/graph") {
		t.Errorf("GET /endpoints = %s, want /graph listed", w.Body)
	}
}

// TestGraphViewerHost: without a token the viewer obeys the Host rule
// (DNS rebinding) like the rest of the Admin API.
func TestGraphViewerHost(t *testing.T) {
	e := newEnv(t, "", nil)
	run(t, e, []behaviour{
		{name: "localhost", req: req{path: graphui.Path}, status: 200},
		{name: "ip literal", req: req{path: graphui.Path, header: map[string]string{"Host": "127.0.0.1:8001"}}, status: 200},
		{name: "rebinding host", req: req{path: graphui.Path, header: map[string]string{"Host": "evil.example.com"}},
			status: 403, body: `{"message":"Host not allowed"}`},
	})
}
