package settings

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseConf(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    []confLine
		wantErr []string
	}{
		{"empty", "", nil, nil},
		{"one", "log_level = debug\n", []confLine{{1, "log_level", "debug"}}, nil},
		{"no spaces", "log_level=debug", []confLine{{1, "log_level", "debug"}}, nil},
		{"trimmed", "  \tlog_level   =   debug  \t", []confLine{{1, "log_level", "debug"}}, nil},
		{"crlf", "a = 1\r\nb = 2\r\n", []confLine{{1, "a", "1"}, {2, "b", "2"}}, nil},
		{"comments and blanks", "# header\n\n   # indented\nlog_level = warn # trailing\n",
			[]confLine{{4, "log_level", "warn"}}, nil},
		{"comment right after value", "a = b#c", []confLine{{1, "a", "b"}}, nil},
		{"escaped hash", `pg_password = ab\#cd # comment`, []confLine{{1, "pg_password", "ab#cd"}}, nil},
		{"escaped hash at end", `a = x\#`, []confLine{{1, "a", "x#"}}, nil},
		{"other backslashes stay", `a = C:\data\x \\#y`, []confLine{{1, "a", `C:\data\x \#y`}}, nil},
		{"empty value", "ssl_cert =\nssl_cert_key = # none\n",
			[]confLine{{1, "ssl_cert", ""}, {2, "ssl_cert_key", ""}}, nil},
		{"equals in value", "declarative_config_string = a=b=c", []confLine{{1, "declarative_config_string", "a=b=c"}}, nil},
		{"commented out setting", "#log_level = debug", nil, nil},
		{"missing equals", "log_level debug\nok = 1", []confLine{{2, "ok", "1"}},
			[]string{"expected 'name = value' (datakit.conf line 1)"}},
		{"missing name", "\n = value", nil, []string{"expected 'name = value' (datakit.conf line 2)"}},
		{"name hidden by comment", "# = x\n\\# = y", []confLine{{2, "#", "y"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := parseConf([]byte(tc.in), "datakit.conf")
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseConf(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
			}
			if !reflect.DeepEqual(msgs, tc.wantErr) {
				t.Errorf("parseConf(%q) errors = %q, want %q", tc.in, msgs, tc.wantErr)
			}
		})
	}
}

func TestParseConfDoesNotEchoMalformedLines(t *testing.T) {
	_, errs := parseConf([]byte("pg_password hunter2-secret\n"), "datakit.conf")
	if len(errs) != 1 || strings.Contains(errs[0].Error(), "hunter2") {
		t.Errorf("parseConf errors = %v, want one error without the line's content", errs)
	}
}

func TestEscapeConfRoundTrip(t *testing.T) {
	for _, v := range []string{"plain", "a#b", `a\#b`, `a\`, `#`, `\\#\#`, "x = y"} {
		line := "name = " + escapeConf(v)
		got, errs := parseConf([]byte(line), "t")
		if len(errs) != 0 || len(got) != 1 || got[0].value != v {
			t.Errorf("parseConf(%q) = %+v, %v; want value %q", line, got, errs, v)
		}
	}
}

func TestDisplayName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"foo", "foo"},
		{"foo-bar.baz", "foo-bar.baz"},
		{"a b", `"a b"`},
		{"it's", `"it's"`},
		{"\x1b[31mred", `"\x1b[31mred"`},
		{strings.Repeat("x", 70), `"` + strings.Repeat("x", 64) + `"…`},
	} {
		if got := displayName(tc.in); got != tc.want {
			t.Errorf("displayName(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
