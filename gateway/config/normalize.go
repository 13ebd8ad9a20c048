package config

import "strings"

const upperHex = "0123456789ABCDEF"

// isReserved reports whether the byte stays percent-encoded when a path is
// normalized (§7.1): decoding these would change how the path splits or how
// an upstream reads it.
func isReserved(c byte) bool {
	switch c {
	case '!', '*', '\'', '(', ')', ';', ':', '@', '&', '=', '+', '$', ',', '/', '?', '%', '#', '[', ']':
		return true
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// NormalizePath returns the normalized form of a request path (§7.1), the one
// the router matches and the upstream path is built from:
//
//  1. every %XX is decoded except reserved characters (!*'();:@&=+$,/?%#[]),
//     which stay encoded with upper-case hex;
//  2. dot segments are removed (RFC 3986 §5.2.4, never above the root);
//  3. runs of '/' collapse into one.
//
// A '%' that starts no valid escape becomes "%25". net/http already rejects
// such paths with 400 (as nginx does for Kong); encoding it keeps the result
// stable under a second normalization, so no later decoder can read an escape
// the router never saw ("%%32%65" must not turn into "%2e").
//
// The path is expected to start with '/' (the proxy answers 400 otherwise); it
// is returned unchanged, without allocating, when it is already normalized.
func NormalizePath(p string) string {
	if isNormalized(p) {
		return p
	}
	b := decodePath(p)
	b = removeDotSegments(b)
	b = mergeSlashes(b)
	return string(b)
}

// isNormalized reports whether NormalizePath would return p as is: no escape
// to decode, no dot segment, no empty segment.
func isNormalized(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%':
			return false
		case '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return false
			}
		case '.':
			if (i == 0 || p[i-1] == '/') && isDotSegmentAt(p, i) {
				return false
			}
		}
	}
	return true
}

// isDotSegmentAt reports whether the segment starting at p[i] is "." or "..".
func isDotSegmentAt(p string, i int) bool {
	end := strings.IndexByte(p[i:], '/')
	if end < 0 {
		end = len(p) - i
	}
	seg := p[i : i+end]
	return seg == "." || seg == ".."
}

// decodePath is step 1 of NormalizePath.
func decodePath(p string) []byte {
	b := make([]byte, 0, len(p)+4)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isReserved(v) {
				b = append(b, '%', upperHex[v>>4], upperHex[v&0xF])
			} else {
				b = append(b, v)
			}
			i += 2
			continue
		}
		b = append(b, '%', '2', '5')
	}
	return b
}

// removeDotSegments is RFC 3986 §5.2.4's algorithm; the rule letters refer to it.
func removeDotSegments(in []byte) []byte {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		rest := in[i:]
		switch {
		case hasPrefix(rest, "../"): // A
			i += 3
		case hasPrefix(rest, "./"): // A
			i += 2
		case hasPrefix(rest, "/./"): // B: "/./" becomes "/"
			i += 2
		case string(rest) == "/.": // B at the end
			out = append(out, '/')
			i = len(in)
		case hasPrefix(rest, "/../"): // C: "/../" becomes "/", drop the last output segment
			i += 3
			out = dropLastSegment(out)
		case string(rest) == "/..": // C at the end
			out = append(dropLastSegment(out), '/')
			i = len(in)
		case string(rest) == "." || string(rest) == "..": // D
			i = len(in)
		default: // E: move the first segment, with its leading '/', to the output
			j := 0
			if rest[0] == '/' {
				j = 1
			}
			for j < len(rest) && rest[j] != '/' {
				j++
			}
			out = append(out, rest[:j]...)
			i += j
		}
	}
	return out
}

func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// dropLastSegment removes the last segment and its preceding '/' (if any).
func dropLastSegment(out []byte) []byte {
	for k := len(out) - 1; k >= 0; k-- {
		if out[k] == '/' {
			return out[:k]
		}
	}
	return out[:0]
}

// mergeSlashes collapses runs of '/' in place.
func mergeSlashes(b []byte) []byte {
	n := 0
	for i, c := range b {
		if c == '/' && i > 0 && b[i-1] == '/' {
			continue
		}
		b[n] = c
		n++
	}
	return b[:n]
}

// isPathSafe reports whether a byte is sent to the upstream as is (§7.1).
func isPathSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '#', '$', '&', '\'', '(', ')', '*', '+', ',', '/', ':', ';', '=', '?', '@', '[', ']', '%':
		return true
	}
	return false
}

// EscapePath percent-encodes, with upper-case hex, the bytes of a normalized
// (upstream) path outside A-Za-z0-9-._~!#$&'()*+,/:;=?@[]% before it is sent
// (§7.1). Escapes kept by NormalizePath pass through untouched, so
// NormalizePath(EscapePath(p)) == p for every normalized p.
func EscapePath(p string) string {
	n := 0
	for i := 0; i < len(p); i++ {
		if !isPathSafe(p[i]) {
			n++
		}
	}
	if n == 0 {
		return p
	}
	b := make([]byte, 0, len(p)+2*n)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if isPathSafe(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', upperHex[c>>4], upperHex[c&0xF])
		}
	}
	return string(b)
}
