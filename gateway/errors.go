package gateway

import (
	"fmt"
	"html"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// HTTPError is a gateway-made error response (gateway.md §8.8). Message is
// what the client sees; Err, if any, is only logged.
type HTTPError struct {
	Status  int
	Message string
	Err     error
	// Header holds extra response headers (Retry-After, WWW-Authenticate).
	Header http.Header
}

func (e *HTTPError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

func (e *HTTPError) Unwrap() error { return e.Err }

// The §8.8 messages.
const (
	msgNoRoute        = "no Route matched with those values"
	msgNoService      = "no Service found with those values"
	msgNameFailed     = "name resolution failed"
	msgNoPeer         = "failure to get a peer from the ring-balancer"
	msgBadUpstream    = "An invalid response was received from the upstream server"
	msgTimeout        = "The upstream server is timing out"
	msgUnexpected     = "An unexpected error occurred"
	msgBadRequest     = "Bad request"
	msgNotAllowed     = "Method not allowed"
	msgUnavailable    = "Service unavailable"
	msgHeaderTooBig   = "Request header or cookie too large"
	msgURITooLong     = "URI too long"
	msgTooLarge       = "Payload too large"
	msgRequestTimeout = "Request timeout"
)

type errorFormat uint8

const (
	formatJSON errorFormat = iota
	formatHTML
	formatXML
	formatPlain
)

// negotiateFormat picks the error format from Accept (media ranges with q,
// highest wins, first on ties), else Content-Type, else the default.
func negotiateFormat(r *http.Request, def errorFormat) errorFormat {
	accept := r.Header.Get("Accept")
	if accept == "" {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			return formatFor(ct, def)
		}
		return def
	}
	best, bestQ := def, -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				q = v
			}
		}
		if q > bestQ {
			best, bestQ = formatFor(mt, formatJSON), q
		}
	}
	return best
}

func formatFor(mediaType string, def errorFormat) errorFormat {
	mt, _, err := mime.ParseMediaType(mediaType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(mediaType))
	}
	switch mt {
	case "text/html":
		return formatHTML
	case "application/xml":
		return formatXML
	case "text/plain", "text/*":
		return formatPlain
	case "application/json", "application/*", "*/*":
		return formatJSON
	}
	return def
}

// ParseErrorFormat maps the error_default_type setting.
func ParseErrorFormat(ct string) errorFormat { return formatFor(ct, formatJSON) }

// errorBody renders a §8.8 template.
func errorBody(f errorFormat, msg, requestID string) (contentType string, body []byte) {
	switch f {
	case formatHTML:
		return "text/html; charset=utf-8", []byte("<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    <p>" +
			html.EscapeString(msg) + ".</p>\n    <p>request_id: " + requestID + "</p>\n  </body>\n</html>\n")
	case formatXML:
		return "application/xml; charset=utf-8", []byte("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>" +
			html.EscapeString(msg) + "</message>\n  <requestid>" + requestID + "</requestid>\n</error>\n")
	case formatPlain:
		return "text/plain; charset=utf-8", []byte(msg + "\nrequest_id: " + requestID + "\n")
	}
	return "application/json; charset=utf-8", []byte("{\n  \"message\":" + strconv.Quote(msg) + ",\n  \"request_id\":\"" + requestID + "\"\n}")
}

// redirectError is the https redirect of gateway.md §7.5: a status and a
// Location, no body.
type redirectError struct {
	status   int
	location string
}

func (e *redirectError) Error() string { return strconv.Itoa(e.status) + " redirect to https" }

func (e *redirectError) Response() (int, http.Header, []byte) {
	return e.status, http.Header{"Location": {e.location}}, nil
}
