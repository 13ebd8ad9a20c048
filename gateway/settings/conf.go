package settings

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// confLine is one "name = value" line of a datakit.conf file.
type confLine struct {
	line  int // 1-based
	name  string
	value string // unescaped and trimmed; "" = unset
}

// parseConf reads datakit.conf syntax (gateway.md §2.1, as kong.conf): one
// "name = value" per line; "#" starts a comment anywhere on a line and "\#"
// is a literal "#" (the only escape: other backslashes stay as they are);
// names and values are trimmed; blank and comment-only lines are skipped.
// source names the file in errors ("datakit.conf line 12"). A malformed line
// is reported without its content, which may hold a secret. Names are not
// checked here.
func parseConf(data []byte, source string) ([]confLine, []error) {
	var out []confLine
	var errs []error
	for i, raw := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		text := strings.TrimSpace(stripComment(string(raw)))
		if text == "" {
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			errs = append(errs, fmt.Errorf("expected 'name = value' (%s line %d)", source, n))
			continue
		}
		out = append(out, confLine{line: n, name: name, value: strings.TrimSpace(value)})
	}
	return out, errs
}

// stripComment removes a "#" comment and turns "\#" into "#".
func stripComment(s string) string {
	if !strings.Contains(s, "#") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '#':
			b.WriteByte('#')
			i++
		case s[i] == '#':
			return b.String()
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// escapeConf is the inverse of stripComment for a trimmed value: it writes a
// value so that parseConf reads it back unchanged.
func escapeConf(v string) string {
	return strings.ReplaceAll(v, "#", `\#`)
}

// displayName shows a setting name from input in an error message: as is
// when it is plain, else quoted and shortened.
func displayName(name string) string {
	plain := len(name) <= 64
	for i := 0; plain && i < len(name); i++ {
		c := name[i]
		plain = c > ' ' && c < 0x7f && c != '\'' && c != '"' && c != '\\'
	}
	if plain {
		return name
	}
	if len(name) > 64 {
		return strconv.QuoteToASCII(name[:64]) + "…"
	}
	return strconv.QuoteToASCII(name)
}
