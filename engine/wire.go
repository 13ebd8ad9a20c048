package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
)

// This file holds the conversions between runtime values and HTTP messages
// (spec §6): header maps, query strings and bodies. Call, exit and the gateway
// share them so that every place a graph meets the wire behaves alike. It
// deliberately avoids net/http: the engine must not depend on HTTP servers.

// maxHeaderValueBytes bounds one written header field line (hardening §2.4).
const maxHeaderValueBytes = 8 << 10

// isDroppedHeader reports whether a canonical name is ignored in written
// header maps: framing is computed from the actual body and hop-by-hop headers
// never cross the gateway (§6.1, gateway.md §8.1).
func isDroppedHeader(name string) bool {
	switch name {
	case "Content-Length", "Connection", "Keep-Alive", "Proxy-Connection",
		"Proxy-Authenticate", "Proxy-Authorization", "Transfer-Encoding", "Te",
		"Trailer", "Upgrade":
		return true
	}
	return false
}

// HeaderMap reads a message's header into a header map (§6.1): names in
// canonical form, one field line as a string, several as an array of strings
// in order. Names with no lines are left out. Keys that canonicalise to the
// same name (only in hand-built maps) are combined in byte order of the keys.
func HeaderMap(h map[string][]string) map[string]any {
	m := make(map[string]any, len(h))
	for k, vs := range h {
		if textproto.CanonicalMIMEHeaderKey(k) != k {
			return headerMapSlow(h)
		}
		if len(vs) > 0 {
			m[k] = headerValue(vs)
		}
	}
	return m
}

// headerMapSlow is HeaderMap for a header with non-canonical keys: it visits
// the keys in byte order so that combined lines have a deterministic order.
func headerMapSlow(h map[string][]string) map[string]any {
	lines := make(map[string][]string, len(h))
	for _, k := range SortedKeys(h) {
		name := textproto.CanonicalMIMEHeaderKey(k)
		lines[name] = append(lines[name], h[k]...)
	}
	m := make(map[string]any, len(lines))
	for name, vs := range lines {
		if len(vs) > 0 {
			m[name] = headerValue(vs)
		}
	}
	return m
}

func headerValue(vs []string) any {
	if len(vs) == 1 {
		return vs[0]
	}
	arr := make([]any, len(vs))
	for i, v := range vs {
		arr[i] = v
	}
	return arr
}

// HeaderLines converts a header map written by a graph into field lines
// (§6.1). m must be an object (nil gives no lines). A string sets one line, a
// number or boolean its JSON text, an array one line per element (strings,
// numbers, booleans), null removes the header. Keys equal ignoring case are
// combined, their lines in byte order of the keys as written; a null among
// them contributes no lines, and a name left with no lines at all (null or
// empty arrays only) is a removal (nil Values). Content-Length and hop-by-hop
// headers are dropped. The result is sorted by canonical name. Errors name the
// key as written: an invalid name first (the lowest in byte order), else the
// first invalid value in the result's order.
func HeaderLines(m any) ([]HeaderLine, error) {
	if m == nil {
		return nil, nil
	}
	obj, ok := m.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected map, got %s", JSONType(m))
	}
	type entry struct{ name, key string }
	entries := make([]entry, 0, len(obj))
	badName, bad := "", false
	for k := range obj {
		if !validHeaderName(k) {
			if !bad || k < badName {
				badName, bad = k, true
			}
			continue
		}
		name := textproto.CanonicalMIMEHeaderKey(k)
		if !isDroppedHeader(name) {
			entries = append(entries, entry{name, k})
		}
	}
	if bad {
		return nil, fmt.Errorf("invalid header name %q", badName)
	}
	// Sorting by canonical name, then key, puts keys that combine next to each
	// other, in the order their lines are concatenated.
	slices.SortFunc(entries, func(x, y entry) int {
		if c := strings.Compare(x.name, y.name); c != 0 {
			return c
		}
		return strings.Compare(x.key, y.key)
	})
	lines := make([]HeaderLine, 0, len(entries))
	for _, e := range entries {
		n := len(lines)
		if n == 0 || lines[n-1].Name != e.name {
			lines = append(lines, HeaderLine{Name: e.name})
			n++
		}
		vals, err := appendHeaderValues(lines[n-1].Values, obj[e.key], false)
		if err != nil {
			return nil, fmt.Errorf("invalid value for header %q", e.key)
		}
		lines[n-1].Values = vals
	}
	return lines, nil
}

// appendHeaderValues appends the field lines of one header map value; nested
// reports whether v is an array element (arrays may not nest). A null or empty
// array appends nothing, so the caller sees nil for a pure removal.
func appendHeaderValues(dst []string, v any, nested bool) ([]string, error) {
	var s string
	switch x := v.(type) {
	case nil:
		if nested {
			return nil, errInvalidHeaderValue
		}
		return dst, nil
	case string:
		s = x
	case bool:
		s = strconv.FormatBool(x)
	case int:
		s = strconv.Itoa(x)
	case int64, float64:
		s = FormatNumber(x) // JSON text: 10, 1.5, 1e+21
	case []any:
		if nested {
			return nil, errInvalidHeaderValue
		}
		for _, e := range x {
			var err error
			if dst, err = appendHeaderValues(dst, e, true); err != nil {
				return nil, err
			}
		}
		return dst, nil
	default:
		return nil, errInvalidHeaderValue
	}
	if len(s) > maxHeaderValueBytes || strings.ContainsAny(s, "\r\n\x00") {
		return nil, errInvalidHeaderValue
	}
	return append(dst, s), nil
}

var errInvalidHeaderValue = errors.New("invalid header value")

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// MergeHeaders applies written header lines to a message's header with the
// merge semantics of service_request.headers and response.headers (§6.1):
// each line replaces all existing lines of that header (whatever the case of
// the existing key), nil Values removes it, other headers stay.
func MergeHeaders(h map[string][]string, lines []HeaderLine) {
	for _, l := range lines {
		delete(h, l.Name)
		for k := range h {
			if strings.EqualFold(k, l.Name) {
				delete(h, k)
			}
		}
		if len(l.Values) > 0 {
			h[l.Name] = append([]string(nil), l.Values...)
		}
	}
}

// DecodeQuery decodes a raw query string into a query map (§6.2): pairs are
// separated by `&` only, `+` is a space, invalid percent-escapes are kept
// literally, a repeated key gives an array in order, a key without `=` is
// true. Pairs with an empty key are discarded, as Kong does.
func DecodeQuery(raw string) map[string]any {
	m := map[string]any{}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		rawKey, rawVal, hasVal := strings.Cut(pair, "=")
		if rawKey == "" {
			continue
		}
		key := unescapeQuery(rawKey)
		var val any = true
		if hasVal {
			val = unescapeQuery(rawVal)
		}
		switch prev := m[key].(type) {
		case nil:
			m[key] = val
		case []any:
			m[key] = append(prev, val)
		default:
			m[key] = []any{prev, val}
		}
	}
	return m
}

// unescapeQuery decodes `+` and valid %XX escapes, keeping invalid escapes as
// written.
func unescapeQuery(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// EncodeQuery encodes a query map (§6.2): keys in byte order; a string gives
// k=v, a number or boolean its JSON text, null the bare key, an array one pair
// per element by the same rules (an empty array gives nothing), an object
// k=<its JSON>. Everything but unreserved characters is percent-encoded, space
// as %20. An empty map gives "".
func EncodeQuery(m map[string]any) string {
	if len(m) == 0 {
		return ""
	}
	var b strings.Builder
	for _, k := range SortedKeys(m) {
		appendQueryPairs(&b, k, m[k])
	}
	return b.String()
}

func appendQueryPairs(b *strings.Builder, key string, v any) {
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			appendQueryPairs(b, key, e)
		}
		return
	}
	if b.Len() > 0 {
		b.WriteByte('&')
	}
	escapeQuery(b, key)
	switch x := v.(type) {
	case nil:
		return
	case string:
		b.WriteByte('=')
		escapeQuery(b, x)
	default:
		// Numbers, booleans and objects: their JSON text. Runtime values always
		// encode; should one not, the bare key is the least surprising output.
		if text, err := EncodeJSON(x); err == nil {
			b.WriteByte('=')
			escapeQuery(b, string(text))
		}
	}
}

const upperHex = "0123456789ABCDEF"

func escapeQuery(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// MergeURLQuery merges a call's query map into its URL's raw query (§7.1): URL
// parameters whose decoded key appears in m are dropped, the others kept as
// written and in order, then m's encoded pairs are appended. Empty segments
// (`a&&b`) are not kept.
func MergeURLQuery(rawQuery string, m map[string]any) string {
	if m == nil {
		return rawQuery
	}
	var b strings.Builder
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		rawKey, _, _ := strings.Cut(pair, "=")
		if _, replaced := m[unescapeQuery(rawKey)]; replaced {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	if q := EncodeQuery(m); q != "" {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(q)
	}
	return b.String()
}

// IsJSONContentType reports whether a content type is JSON (§6.3): its media
// type, parameters ignored and case-insensitively, is application/json or
// ends in +json.
func IsJSONContentType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "application/json" {
		return true
	}
	typ, sub, ok := strings.Cut(mt, "/")
	return ok && typ != "" && len(sub) > len("+json") && strings.HasSuffix(sub, "+json")
}

// DecodeBody reads a message body as a value (§6.3): under a JSON content type
// the decoded document (an empty or all-whitespace body is null), otherwise
// the raw bytes as a string; no body at all (present false) is null. A JSON
// error is returned as is so that callers prefix it with their own context.
func DecodeBody(contentType string, body []byte, present bool) (any, error) {
	if !present {
		return nil, nil
	}
	if !IsJSONContentType(contentType) {
		return string(body), nil
	}
	if isJSONSpace(body) {
		return nil, nil
	}
	return DecodeJSON(body)
}

// isJSONSpace reports whether b holds only JSON whitespace (or nothing).
func isJSONSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// EncodeBody writes a value as a message body (§6.3): a string verbatim, null
// as no body, any other value as JSON (jsonEncoded true), for which the caller
// chooses application/json unless the graph set a Content-Type.
func EncodeBody(v any) (b []byte, jsonEncoded bool, err error) {
	switch x := v.(type) {
	case nil:
		return nil, false, nil
	case string:
		return []byte(x), false, nil
	}
	b, err = EncodeJSON(v)
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// ErrTooLarge is a body longer than the limit given to ReadLimited.
var ErrTooLarge = errors.New("body exceeds the limit")

// ReadLimited reads a whole body of at most limit bytes, failing with
// ErrTooLarge past it. It reads into chunks that are never copied while
// reading, so a body over the limit costs about the limit in memory, not
// the reallocations of a growing slice (hardening T19, T30).
func ReadLimited(r io.Reader, limit int64) ([]byte, error) {
	var chunks [][]byte
	total, size := int64(0), int64(4<<10)
	for {
		buf := make([]byte, min(size, limit+1-total))
		n, err := io.ReadFull(r, buf)
		chunks = append(chunks, buf[:n])
		total += int64(n)
		switch {
		case total > limit:
			return nil, ErrTooLarge
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			if len(chunks) == 1 {
				return chunks[0], nil
			}
			return bytes.Join(chunks, nil), nil
		case err != nil:
			return nil, err
		}
		size = min(2*size, 1<<20)
	}
}
