package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// bodyKey carries the request body read by protect.
type bodyKey struct{}

// requestBody is the body protect read, with its media type ("" when the
// body is empty).
type requestBody struct {
	data      []byte
	mediaType string
	params    map[string]string
}

// protect applies §4.1 and §4.2 around the router, in this order: response
// headers, trailing slash, CORS preflight of a GUI origin, token, Host,
// cross-site writes, body size and type. The graph viewer's files (§4.11)
// need no token and are served once the Host rule passed.
func (a *api) protect(next http.Handler) http.Handler {
	var tokenSum [32]byte
	if a.opts.AdminToken != "" {
		tokenSum = sha256.Sum256([]byte(a.opts.AdminToken))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w = &headerWriter{ResponseWriter: w, start: time.Now(), server: a.opts.ServerHeader, latency: a.opts.LatencyHeader}
		viewer := a.viewer.Match(r)
		if p := r.URL.Path; !viewer && len(p) > 1 && strings.HasSuffix(p, "/") {
			r.URL.Path = strings.TrimRight(p, "/")
			if r.URL.Path == "" {
				r.URL.Path = "/"
			}
			if r.URL.RawPath != "" {
				r.URL.RawPath = strings.TrimRight(r.URL.RawPath, "/")
			}
		}
		origin := r.Header.Get("Origin")
		guiOrigin := origin != "" && a.isGUIOrigin(origin)
		if guiOrigin {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS, PATCH, POST, PUT, DELETE")
				if rh := r.Header.Values("Access-Control-Request-Headers"); len(rh) > 0 {
					h.Set("Access-Control-Allow-Headers", strings.Join(rh, ", "))
				}
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if a.opts.AdminToken != "" && !viewer {
			got := sha256.Sum256([]byte(r.Header.Get("Kong-Admin-Token")))
			if subtle.ConstantTimeCompare(got[:], tokenSum[:]) != 1 {
				a.fail(w, r, errUnauthorized)
				return
			}
		} else if a.opts.AdminToken == "" && !a.hostAllowed(r.Host) {
			a.fail(w, r, errHostNotAllowed)
			return
		}
		if viewer {
			a.viewer.ServeHTTP(w, r)
			return
		}
		write := r.Method == http.MethodPost || r.Method == http.MethodPut ||
			r.Method == http.MethodPatch || r.Method == http.MethodDelete
		if write && !guiOrigin && crossSite(r) {
			a.fail(w, r, errCrossOrigin)
			return
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			body, err := a.readBody(w, r)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			if isForm(body.mediaType) && a.opts.AdminToken == "" && fromBrowser(r) {
				a.fail(w, r, errBrowserForm)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, body))
		}
		next.ServeHTTP(w, r)
	})
}

// readBody reads a write's body within admin_max_body_size and checks its
// type (§4.2): a non-empty body must declare a type this API reads.
func (a *api) readBody(w http.ResponseWriter, r *http.Request) (*requestBody, error) {
	cts := r.Header.Values("Content-Type")
	if len(cts) > 1 {
		return nil, errMultipleTypes
	}
	if r.ContentLength > a.opts.MaxBodySize {
		return nil, errTooLarge
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxBodySize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, &Error{Status: http.StatusBadRequest, Message: "Cannot read request body"}
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	body := &requestBody{data: data}
	if len(data) == 0 {
		return body, nil
	}
	if len(cts) == 0 {
		return nil, errUnsupportedMedia
	}
	mt, params, err := mime.ParseMediaType(cts[0])
	if err != nil {
		return nil, errUnsupportedMedia
	}
	// YAML is read here on every path so an unknown path is 404 whatever
	// the type (hardening T34); handlers other than /config refuse it
	// (decodeBody).
	switch mt {
	case "application/json", "application/x-www-form-urlencoded", "multipart/form-data",
		"application/yaml", "text/yaml", "application/x-yaml":
	default:
		return nil, errUnsupportedMedia
	}
	body.mediaType, body.params = mt, params
	return body, nil
}

func isForm(mt string) bool {
	return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data"
}

// fromBrowser reports whether a request carries headers only browsers send.
func fromBrowser(r *http.Request) bool {
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Sec-Fetch-Mode") != ""
}

// crossSite reports a write sent by another site (§4.1 rule 3).
func crossSite(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return true
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return !strings.EqualFold(hostPort(u.Host, u.Scheme), hostPort(r.Host, scheme))
}

// hostPort renders host:port with the scheme's default port filled in.
func hostPort(hp, scheme string) string {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		host, port = strings.Trim(hp, "[]"), "80"
		if scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(strings.ToLower(host), port)
}

// hostAllowed applies the DNS-rebinding rule (§4.1 rule 2).
func (a *api) hostAllowed(hp string) bool {
	host := hp
	if h, _, err := net.SplitHostPort(hp); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if host == "localhost" {
		return true
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return slices.ContainsFunc(a.opts.AllowedHosts, func(h string) bool { return strings.EqualFold(h, host) })
}

// isGUIOrigin reports whether origin is one of admin_gui_origin.
func (a *api) isGUIOrigin(origin string) bool {
	o := strings.TrimSuffix(strings.ToLower(origin), "/")
	return slices.ContainsFunc(a.opts.GUIOrigins, func(g string) bool {
		return strings.TrimSuffix(strings.ToLower(g), "/") == o
	})
}

// headerWriter adds Server and X-Kong-Admin-Latency (§4.2) to every
// response just before its header is written.
type headerWriter struct {
	http.ResponseWriter
	start   time.Time
	server  string
	latency bool
	wrote   bool
}

func (w *headerWriter) WriteHeader(status int) {
	if !w.wrote {
		w.wrote = true
		h := w.ResponseWriter.Header()
		if w.server != "" {
			h.Set("Server", w.server)
		}
		if w.latency {
			h.Set("X-Kong-Admin-Latency", strconv.FormatInt(time.Since(w.start).Milliseconds(), 10))
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *headerWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *headerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
