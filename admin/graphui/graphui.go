// Package graphui serves the graph viewer (gateway.md §4.11): a static page,
// embedded in the binary, that lists the datakit plugins, draws a plugin's
// graph from the Admin API and overlays a debug trace on it. The page reads
// everything through the Admin API it is served from; its files hold no
// configuration.
package graphui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"time"
)

// Path is the viewer's page; its other files live under it.
const Path = "/graph/"

// CSP is the viewer files' Content-Security-Policy: scripts, styles and
// fetches from the Admin API's own origin only, no inline code, no framing.
const CSP = "default-src 'self'; frame-ancestors 'none'"

//go:embed static
var static embed.FS

type file struct {
	body        []byte
	contentType string
	etag        string
}

// Viewer serves the viewer's files. It is safe for concurrent use.
type Viewer struct {
	files map[string]file
}

// New returns the viewer with its embedded files.
func New() *Viewer {
	files := []struct{ path, name, contentType string }{
		{Path, "static/index.html", "text/html; charset=utf-8"},
		{Path + "app.js", "static/app.js", "text/javascript; charset=utf-8"},
		{Path + "style.css", "static/style.css", "text/css; charset=utf-8"},
		{Path + "icon.svg", "static/icon.svg", "image/svg+xml"},
	}
	v := &Viewer{files: make(map[string]file, len(files))}
	for _, f := range files {
		body, err := static.ReadFile(f.name)
		if err != nil {
			panic("graphui: embedded file missing: " + f.name) // a build defect, not a runtime condition
		}
		sum := sha256.Sum256(body)
		v.files[f.path] = file{body: body, contentType: f.contentType, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return v
}

// Match reports whether r is a GET or HEAD of one of the viewer's paths
// (its files, or the page without its trailing slash), matched exactly on
// the raw path: no dot segments, percent-escapes or extra slashes.
func (v *Viewer) Match(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.EscapedPath()
	_, ok := v.files[p]
	return ok || p+"/" == Path
}

// ServeHTTP serves a viewer file by its path and redirects any other path
// to the page.
func (v *Viewer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := v.files[r.URL.EscapedPath()]
	if !ok {
		http.Redirect(w, r, Path, http.StatusMovedPermanently)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Revalidate every time: a new binary may serve a new page.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
