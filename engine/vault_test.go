package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testSecrets resolves from a fixed environment and a movable clock.
func testSecrets(env map[string]string, now *time.Time) *Secrets {
	s := NewSecrets()
	s.lookup = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	s.now = func() time.Time { return *now }
	return s
}

func TestVaultValidation(t *testing.T) {
	tests := []struct {
		vault string
		want  string
	}{
		{`{token: "{vault://aws/x}"}`, `resources.vault.token: unsupported vault "aws"; supported: env, file`},
		{`{token: "{vault://env}"}`, `resources.vault.token: invalid vault reference`},
		{`{token: "{vault://env/a/b/c}"}`, `resources.vault.token: invalid vault reference`},
		{`{token: "{vault://env/x"}`, `resources.vault.token: invalid vault reference`},
		{`{"1bad": x}`, `resources.vault.1bad: invalid vault entry name: must match ^[A-Za-z_][A-Za-z0-9_-]{0,254}$`},
		{`{token: 5}`, `resources.vault.token: expected string, got number`},
		{`{}`, `resources.vault: length must be between 1 and 64, got 0`},
	}
	for _, tt := range tests {
		_, err := CompileBytes([]byte("resources: {vault: "+tt.vault+"}\nnodes: [{name: J, type: jq, jq: '.', input: vault}]\n"), fakeRegistry(nil), Options{})
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(ce.Error(), tt.want) {
			t.Errorf("vault %s: %v, want %q", tt.vault, err, tt.want)
		}
	}
}

func TestVaultResolution(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	env := map[string]string{"MY_TOKEN": "s3cr3t-value", "CREDS": `{"user":"u1"}`}
	secrets := testSecrets(env, &now)
	cfg := `
resources:
  vault:
    token: "{vault://env/my-token}"
    user: "{vault://env/creds/user}"
    file: "{vault://file` + file + `}"
    plain: literal-value
nodes:
  - {name: J, type: jq, inputs: {t: vault.token, u: vault.user, f: vault.file, p: vault.plain}, jq: '.'}
  - {name: EXIT, type: exit, inputs: {body: J}}
`
	plan, err := CompileBytes([]byte(cfg), fakeRegistry(nil), Options{Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	run := func() (*Run, Outcome) {
		r := plan.NewRun(newFakeEx(), RunOptions{Trace: true})
		return r, r.Access(context.Background())
	}
	r, out := run()
	if out.Exit == nil || string(out.Exit.Body) != `{"f":"from-file","p":"literal-value","t":"s3cr3t-value","u":"u1"}` {
		t.Fatalf("exit = %+v", out)
	}
	// The trace never shows a resolved value, literals included.
	trace, _ := json.Marshal(r.Trace())
	for _, secret := range []string{"s3cr3t-value", "u1", "from-file", "literal-value"} {
		if strings.Contains(string(trace), secret) {
			t.Errorf("trace shows %q: %s", secret, trace)
		}
	}
	if !strings.Contains(string(trace), `{"name":"vault","type":"vault","action":"complete"`) {
		t.Errorf("trace lacks the vault node: %s", trace)
	}

	// Values are cached for 60 s per reference.
	env["MY_TOKEN"] = "rotated"
	if _, out := run(); !strings.Contains(string(out.Exit.Body), "s3cr3t-value") {
		t.Errorf("within 60 s: %s, want the cached value", out.Exit.Body)
	}
	now = now.Add(61 * time.Second)
	if _, out := run(); !strings.Contains(string(out.Exit.Body), `"t":"rotated"`) {
		t.Errorf("after 60 s: %s, want the new value", out.Exit.Body)
	}

	// An unset variable fails the vault node.
	delete(env, "MY_TOKEN")
	now = now.Add(61 * time.Second)
	_, out = run()
	want := `cannot resolve vault reference "token": environment variable MY_TOKEN is not set`
	if out.Err == nil || out.Err.Name != "vault" || out.Err.Index != 0 || out.Err.Err.Error() != want {
		t.Errorf("unset variable: %+v, want vault failure %q", out.Err, want)
	}
}

// TestVaultValuesMaskedInErrors: a node error quoting a secret shows it
// masked.
func TestVaultValuesMaskedInErrors(t *testing.T) {
	now := time.Unix(0, 0)
	secrets := testSecrets(map[string]string{"KEY": "hunter2"}, &now)
	reg := fakeRegistry(nil)
	// A node whose error quotes its input, as jq's error(.) does.
	reg.Register("fail", KindFunc(func(a *Attrs) *Decl {
		return &Decl{IO: KeyInput, Input: TypeAny, Build: func(*BuildInfo) (Node, error) {
			return NodeFunc(func(_ context.Context, _ *Env, in []any) ([]any, error) {
				return nil, fmt.Errorf("jq: error: token %v rejected", in[0])
			}), nil
		}}
	}))
	plan, err := CompileBytes([]byte(`
debug: true
resources: {vault: {key: "{vault://env/key}"}}
nodes:
  - {name: F, type: fail, input: vault.key}
`), reg, Options{Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	r := plan.NewRun(newFakeEx(), RunOptions{Trace: true})
	out := r.Access(context.Background())
	if out.Err == nil || out.Err.Err.Error() != "jq: error: token ******** rejected" {
		t.Fatalf("failure = %v, want the secret masked", out.Err)
	}
	if body := string(FailureBody(out.Err, true, "id")); strings.Contains(body, "hunter2") {
		t.Errorf("debug body shows the secret: %s", body)
	}
	if trace, _ := json.Marshal(r.Trace()); strings.Contains(string(trace), "hunter2") {
		t.Errorf("trace shows the secret: %s", trace)
	}
}
