package settings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// secretMarker is appended to secret values in FuzzParseConf so that an
// echoed secret can be recognised in error messages.
const secretMarker = "Zq9-SECRET-MARKER"

// FuzzParseConf feeds arbitrary datakit.conf text through the parser and
// the settings table. Properties: no panic; what parses re-encodes and
// parses back to the same lines; errors are one line each, printable, and
// never contain a secret value; settings that load can be written back as
// datakit.conf text that loads to the same settings.
func FuzzParseConf(f *testing.F) {
	for _, s := range []string{
		"",
		"log_level = debug\n",
		"# comment\nadmin_listen = 0.0.0.0:8001 ssl\nadmin_token = 0123456789abcdef\n",
		"pg_password = a\\#b # comment\r\n",
		"proxy_listen = [::]:8000, 0.0.0.0:8443 http2 ssl\n",
		"trusted_ips = 10.0.0.0/8, ::1\nheaders = off\n",
		"database = off\ndeclarative_config = kong.yml\n",
		"nope = 1\n = x\nbad line\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, _ := parseConf(data, "datakit.conf")

		var again bytes.Buffer
		for _, l := range lines {
			if l.name == "" || l.name != strings.TrimSpace(l.name) || l.value != strings.TrimSpace(l.value) ||
				strings.Contains(l.name, "=") {
				t.Fatalf("parseConf(%q) gave line %+v: untrimmed or malformed", data, l)
			}
			fmt.Fprintf(&again, "%s = %s\n", escapeConf(l.name), escapeConf(l.value))
		}
		back, errs := parseConf(again.Bytes(), "datakit.conf")
		if len(errs) != 0 || len(back) != len(lines) {
			t.Fatalf("parseConf(%q) = %+v, %v; want the %d lines of %q", again.Bytes(), back, errs, len(lines), data)
		}
		for i := range back {
			if back[i].name != lines[i].name || back[i].value != lines[i].value {
				t.Fatalf("round trip of %q: line %d = %+v, want %+v", data, i, back[i], lines[i])
			}
		}

		markable := !bytes.Contains(data, []byte(secretMarker))
		raw := make(map[string]rawValue)
		for _, l := range lines {
			if l.value == "" {
				continue
			}
			v := l.value
			if markable && IsSecret(l.name) {
				v += secretMarker
			}
			raw[l.name] = rawValue{v, fmt.Sprintf("datakit.conf line %d", l.line)}
		}
		s, err := build(raw, testEnvironment())
		if err != nil {
			msg := err.Error()
			if markable && strings.Contains(msg, secretMarker) {
				t.Fatalf("error for %q shows a secret: %s", data, msg)
			}
			if !utf8.ValidString(msg) || strings.ContainsFunc(msg, func(r rune) bool { return r != '\n' && unicode.IsControl(r) }) {
				t.Fatalf("error for %q is not printable lines: %q", data, msg)
			}
			for _, line := range strings.Split(msg, "\n") {
				if strings.TrimSpace(line) == "" {
					t.Fatalf("error for %q has an empty line: %q", data, msg)
				}
			}
			return
		}
		if _, err := json.Marshal(s.Public()); err != nil {
			t.Fatalf("json.Marshal(Public()) for %q: %v", data, err)
		}
		text := formatConf(t, s)
		lines2, errs := parseConf([]byte(text), "formatted")
		if len(errs) != 0 {
			t.Fatalf("formatted settings do not parse: %v\n%s", errs, text)
		}
		raw2 := make(map[string]rawValue)
		for _, l := range lines2 {
			raw2[l.name] = rawValue{l.value, "formatted"}
		}
		s2, err := build(raw2, testEnvironment())
		if err != nil {
			t.Fatalf("formatted settings of %q do not load: %v\n%s", data, err, text)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("settings of %q:\n%+v\nformatted and loaded again:\n%+v\n%s", data, s, s2, text)
		}
	})
}

// formatConf writes effective settings as datakit.conf text, from Public's
// values (and the secrets themselves).
func formatConf(t *testing.T, s *Settings) string {
	t.Helper()
	var b strings.Builder
	pub := s.Public()
	pub["admin_token"], pub["pg_password"] = s.AdminToken.Reveal(), s.PGPassword.Reveal()
	for _, name := range Names() {
		var v string
		switch x := pub[name].(type) {
		case nil:
			continue
		case string:
			v = x
		case bool:
			v = map[bool]string{true: "on", false: "off"}[x]
		case int64:
			v = fmt.Sprint(x)
		case []string:
			switch {
			case len(x) > 0:
				v = strings.Join(x, ", ")
			case name == "proxy_listen" || name == "admin_listen" || name == "status_listen" ||
				name == "plugins" || name == "headers" || name == "headers_upstream":
				v = "off"
			default:
				continue // the other lists default to empty
			}
		default:
			t.Fatalf("Public()[%q] has type %T", name, x)
		}
		fmt.Fprintf(&b, "%s = %s\n", name, escapeConf(v))
	}
	return b.String()
}
