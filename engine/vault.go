package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Vault limits (spec §8.2).
const (
	maxVaultEntries    = 64
	maxVaultValueChars = 4095
	vaultCacheTTL      = 60 * time.Second
)

// vaultRef is one resources.vault value: a reference into the env or file
// vault, or a literal.
type vaultRef struct {
	entry   string
	kind    string // "env", "file" or "" for a literal
	name    string // env: the variable; file: the path
	key     string // env: optional member of the variable's JSON object
	literal string
}

func (v vaultRef) cacheKey() string { return v.kind + "\x00" + v.name + "\x00" + v.key }

// parseVaultRef reads `{vault://env/NAME}`, `{vault://env/NAME/KEY}`,
// `{vault://file/PATH}` or a literal.
func parseVaultRef(entry, v string) (vaultRef, string) {
	ref := vaultRef{entry: entry}
	if !strings.HasPrefix(v, "{vault://") {
		ref.literal = v
		return ref, ""
	}
	if !strings.HasSuffix(v, "}") {
		return ref, "invalid vault reference"
	}
	vault, rest, ok := strings.Cut(v[len("{vault://"):len(v)-1], "/")
	switch {
	case vault != "env" && vault != "file":
		return ref, fmt.Sprintf("unsupported vault %q; supported: env, file", vault)
	case !ok || rest == "" || strings.HasSuffix(rest, "/"):
		return ref, "invalid vault reference"
	case vault == "file":
		ref.kind, ref.name = "file", "/"+rest
	default:
		name, key, hasKey := strings.Cut(rest, "/")
		if name == "" || hasKey && (key == "" || strings.Contains(key, "/")) {
			return ref, "invalid vault reference"
		}
		ref.kind, ref.name, ref.key = "env", strings.ToUpper(strings.ReplaceAll(name, "-", "_")), key
	}
	return ref, ""
}

// decodeVault checks resources.vault and records its entries.
func (d *decoder) decodeVault(v any) []error {
	m, ok := v.(map[string]any)
	if !ok {
		return []error{fmt.Errorf("resources.vault: expected object, got %s", JSONType(v))}
	}
	var errs []error
	if n := len(m); n < 1 || n > maxVaultEntries {
		errs = append(errs, fmt.Errorf("resources.vault: length must be between 1 and %d, got %d", maxVaultEntries, n))
	}
	d.vaultRefs = map[string]vaultRef{}
	for _, name := range SortedKeys(m) {
		at := "resources.vault." + name
		s, isStr := m[name].(string)
		switch {
		case !nameRE.MatchString(name):
			errs = append(errs, fmt.Errorf("%s: invalid vault entry name: %s", at, nameRule))
			continue
		case !isStr:
			errs = append(errs, fmt.Errorf("%s: expected string, got %s", at, JSONType(m[name])))
			continue
		case len([]rune(s)) < 1 || len([]rune(s)) > maxVaultValueChars:
			errs = append(errs, fmt.Errorf("%s: length must be between 1 and %d, got %d", at, maxVaultValueChars, len([]rune(s))))
			continue
		}
		ref, msg := parseVaultRef(name, s)
		if msg != "" {
			errs = append(errs, fmt.Errorf("%s: %s", at, msg))
			continue
		}
		d.vault = append(d.vault, name)
		d.vaultRefs[name] = ref
	}
	return errs
}

// Secrets resolves vault references and keeps each resolved value for 60 s
// (spec §8.2). One instance serves every plan of a process; it is safe for
// concurrent use.
type Secrets struct {
	mu       sync.Mutex
	cache    map[string]cachedSecret
	now      func() time.Time
	lookup   func(string) (string, bool)
	readFile func(string) ([]byte, error)
}

type cachedSecret struct {
	value   string
	expires time.Time
}

// NewSecrets returns a resolver over the process environment and files.
func NewSecrets() *Secrets {
	return &Secrets{cache: map[string]cachedSecret{}, now: time.Now, lookup: os.LookupEnv, readFile: os.ReadFile}
}

func (s *Secrets) resolve(ref vaultRef) (string, error) {
	if ref.kind == "" {
		return ref.literal, nil
	}
	key := ref.cacheKey()
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[key]
	s.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.value, nil
	}
	v, err := s.read(ref)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.cache[key] = cachedSecret{value: v, expires: now.Add(vaultCacheTTL)}
	s.mu.Unlock()
	return v, nil
}

func (s *Secrets) read(ref vaultRef) (string, error) {
	if ref.kind == "file" {
		b, err := s.readFile(ref.name)
		if err != nil {
			return "", fmt.Errorf("cannot read file %s", ref.name)
		}
		v := strings.TrimSuffix(string(b), "\n")
		return strings.TrimSuffix(v, "\r"), nil
	}
	v, ok := s.lookup(ref.name)
	if !ok {
		return "", fmt.Errorf("environment variable %s is not set", ref.name)
	}
	if ref.key == "" {
		return v, nil
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(v), &obj); err != nil {
		return "", fmt.Errorf("key %q not found", ref.key)
	}
	member, ok := obj[ref.key].(string)
	if !ok {
		return "", fmt.Errorf("key %q not found", ref.key)
	}
	return member, nil
}

// redactedError is an error whose text has the request's secrets masked.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// maskSecrets replaces every occurrence of a resolved secret in s.
func maskSecrets(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, masked)
		}
	}
	return s
}

// redactError masks secrets in an error's text, keeping it matchable.
func redactError(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := maskSecrets(err.Error(), secrets)
	if msg == err.Error() {
		return err
	}
	var re *redactedError
	if errors.As(err, &re) {
		return &redactedError{msg: msg, err: re.err}
	}
	return &redactedError{msg: msg, err: err}
}
