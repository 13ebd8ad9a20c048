package settings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretsNeverShown(t *testing.T) {
	const (
		token    = "tok-0123456789-abcdef"
		password = "pw-correct-horse-battery"
	)
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) LoadOptions
	}{
		{"file", func(t *testing.T) LoadOptions {
			return LoadOptions{ConfPath: writeConf(t, "admin_token = "+token+"\npg_password = "+password+"\n")}
		}},
		{"environment", func(*testing.T) LoadOptions {
			return LoadOptions{Env: []string{"DATAKIT_ADMIN_TOKEN=" + token, "DATAKIT_PG_PASSWORD=" + password}}
		}},
		{"command line", func(*testing.T) LoadOptions {
			return LoadOptions{Overrides: []string{"admin_token=" + token, "pg_password=" + password}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := loadT(t, tc.opts(t))
			if err != nil {
				t.Fatalf("Load() error: %v", err)
			}
			if s.AdminToken.Reveal() != token || s.PGPassword.Reveal() != password {
				t.Fatalf("Load() secrets = %q, %q; want the values given", s.AdminToken.Reveal(), s.PGPassword.Reveal())
			}
			pub := s.Public()
			if pub["admin_token"] != Masked || pub["pg_password"] != Masked {
				t.Errorf("Public() secrets = %v, %v; want %q", pub["admin_token"], pub["pg_password"], Masked)
			}
			for _, name := range []string{"admin_token", "pg_password"} {
				if v, ok := s.Lookup(name); v != nil || !ok {
					t.Errorf("Lookup(%q) = %v, %v; want nil, true", name, v, ok)
				}
			}

			var out bytes.Buffer
			fmt.Fprintf(&out, "%v %+v %#v %s %q %x|", s, s, s, s.AdminToken, s.PGPassword, s.AdminToken)
			fmt.Fprintf(&out, "%v %+v %#v|", *s, *s, *s)
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatalf("json.Marshal(settings): %v", err)
			}
			out.Write(b)
			b, _ = json.Marshal(pub)
			out.Write(b)
			slog.New(slog.NewJSONHandler(&out, nil)).Info("settings", "s", s, "token", s.AdminToken)
			slog.New(slog.NewTextHandler(&out, nil)).Info("settings", "s", s, "token", s.AdminToken)
			for _, secret := range []string{token, password} {
				if strings.Contains(out.String(), secret) {
					t.Errorf("a secret was printed:\n%s", out.String())
				}
			}
			if !strings.Contains(out.String(), Masked) {
				t.Errorf("printing settings shows no %q:\n%s", Masked, out.String())
			}
		})
	}
}

func TestSecretZeroValue(t *testing.T) {
	var s Secret
	if s.IsSet() || s.String() != "" || s.Reveal() != "" {
		t.Errorf("Secret zero value: IsSet %v, String %q, Reveal %q", s.IsSet(), s.String(), s.Reveal())
	}
	if got := Default().Public()["admin_token"]; got != nil {
		t.Errorf("Public()[admin_token] without a token = %#v, want nil", got)
	}
}

// TestSecretsNotInErrors checks that an invalid secret is reported by name
// and source only.
func TestSecretsNotInErrors(t *testing.T) {
	const (
		badPassword = "pw-has-a\x01control-char"
		shortToken  = "tok-short"
	)
	for _, tc := range []struct {
		name string
		opts LoadOptions
		want string
	}{
		{"invalid pg_password in the environment",
			LoadOptions{Env: []string{"DATAKIT_PG_PASSWORD=" + badPassword}},
			"invalid value for pg_password (environment DATAKIT_PG_PASSWORD): contains a control character"},
		{"invalid pg_password on the command line",
			LoadOptions{Overrides: []string{"pg_password=" + badPassword}},
			"invalid value for pg_password (command line): contains a control character"},
		{"invalid UTF-8 pg_password",
			LoadOptions{Overrides: []string{"pg_password=pw-\xff\xfe-bytes"}},
			"invalid value for pg_password (command line): not valid UTF-8"},
		{"short admin_token",
			LoadOptions{Env: []string{"DATAKIT_ADMIN_TOKEN=" + shortToken}},
			"invalid value for admin_token (environment DATAKIT_ADMIN_TOKEN): must be at least 16 characters"},
		{"secret under a misspelled name is not echoed",
			LoadOptions{Overrides: []string{"pg_pasword=" + badPassword}},
			"unknown setting 'pg_pasword' (command line)"},
		{"secret in a malformed override",
			LoadOptions{Overrides: []string{"pg_password:" + badPassword}},
			"expected name=value (command line)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadT(t, tc.opts)
			got := errString(err)
			if got != tc.want {
				t.Errorf("Load() error = %q, want %q", got, tc.want)
			}
			for _, secret := range []string{badPassword, "pw-has-a", "control-char", shortToken, "bytes"} {
				if strings.Contains(got, secret) {
					t.Errorf("Load() error %q contains %q", got, secret)
				}
			}
		})
	}

	// In a file, a malformed secret line is not echoed either.
	path := writeConf(t, "pg_password "+badPassword+"\nadmin_token = "+shortToken+"\n")
	_, err := loadT(t, LoadOptions{ConfPath: path})
	got := errString(err)
	if strings.Contains(got, "pw-has-a") || strings.Contains(got, shortToken) || !strings.Contains(got, "must be at least 16 characters") {
		t.Errorf("Load() error = %q, want the problems without the values", got)
	}
}
