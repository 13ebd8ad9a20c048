package settings

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// DefaultSearchPaths are the files Load tries, in order, when neither
// LoadOptions.ConfPath nor $DATAKIT_CONF names one.
func DefaultSearchPaths() []string {
	return []string{"./datakit.conf", "/etc/datakit/datakit.conf"}
}

// maxConfBytes caps a datakit.conf file; real ones are a few KiB.
const maxConfBytes = 1 << 20

// envPrefix starts the environment variables that carry settings.
const envPrefix = "DATAKIT_"

// LoadOptions are the inputs of Load. The zero value loads the defaults
// plus the first file of DefaultSearchPaths that exists.
type LoadOptions struct {
	// ConfPath is --conf; "" = look at $DATAKIT_CONF, then SearchPaths.
	// A named file that cannot be read is an error.
	ConfPath string
	// Env is the environment, os.Environ()-style ("NAME=value"); it supplies
	// DATAKIT_CONF and DATAKIT_<SETTING> values. nil = no environment.
	Env []string
	// Overrides are "name=value" pairs from --set and the command-line
	// shorthands, applied last, in order.
	Overrides []string
	// SearchPaths replaces DefaultSearchPaths when non-nil (tests); an empty,
	// non-nil slice searches nowhere. Missing files are skipped.
	SearchPaths []string
}

// rawValue is a setting's winning value and where it came from.
type rawValue struct {
	value  string
	source string // "datakit.conf line 3", "environment DATAKIT_X", "command line"
}

// environment is what the defaults depend on beyond constants.
type environment struct {
	gomaxprocs int
	newNodeID  func() (string, error)
}

func defaultEnvironment() environment {
	return environment{gomaxprocs: runtime.GOMAXPROCS(0), newNodeID: randomUUID}
}

// Load reads the settings (gateway.md §2.1): defaults, then the datakit.conf
// file, then DATAKIT_<NAME> environment variables, then opts.Overrides, each
// overriding the one before; an empty value leaves the setting as the
// earlier sources had it. It then validates every value and the start-up
// rules that depend on settings alone. Every problem is reported (joined
// with errors.Join), one line each naming the setting and the source;
// secret values never appear in errors.
func Load(opts LoadOptions) (*Settings, error) {
	return load(opts, defaultEnvironment())
}

func load(opts LoadOptions, env environment) (*Settings, error) {
	known := make(map[string]bool)
	for _, e := range newTable(1) {
		known[e.name] = true
	}
	raw := make(map[string]rawValue)
	var errs []error

	path, data, err := readConf(opts)
	if err != nil {
		return nil, err
	}
	if path != "" {
		source := filepath.Clean(path)
		lines, lineErrs := parseConf(data, source)
		errs = append(errs, lineErrs...)
		for _, l := range lines {
			switch {
			case !known[l.name]:
				errs = append(errs, fmt.Errorf("unknown setting '%s' (%s line %d)", displayName(l.name), source, l.line))
			case l.value != "":
				raw[l.name] = rawValue{l.value, fmt.Sprintf("%s line %d", source, l.line)}
			}
		}
	}

	seen := make(map[string]bool)
	for _, kv := range opts.Env {
		key, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(key, envPrefix) || seen[key] {
			continue
		}
		seen[key] = true // the first wins, as with os.Getenv
		name := strings.ToLower(key[len(envPrefix):])
		if known[name] && key == envPrefix+strings.ToUpper(name) {
			if value = strings.TrimSpace(value); value != "" {
				raw[name] = rawValue{value, "environment " + key}
			}
		}
	}

	const cli = "command line"
	for _, o := range opts.Overrides {
		name, value, ok := strings.Cut(o, "=")
		name = strings.TrimSpace(name)
		switch {
		case !ok || name == "":
			errs = append(errs, fmt.Errorf("expected name=value (%s)", cli))
		case !known[name]:
			errs = append(errs, fmt.Errorf("unknown setting '%s' (%s)", displayName(name), cli))
		default:
			if value = strings.TrimSpace(value); value != "" {
				raw[name] = rawValue{value, cli}
			}
		}
	}

	s, err := build(raw, env)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.ConfPath = path
	return s, nil
}

// readConf finds and reads the settings file: ConfPath, $DATAKIT_CONF, then
// the search paths. path is "" when there is none.
func readConf(opts LoadOptions) (path string, data []byte, err error) {
	origin := ""
	switch {
	case opts.ConfPath != "":
		path, origin = opts.ConfPath, "--conf"
	case getenv(opts.Env, "DATAKIT_CONF") != "":
		path, origin = getenv(opts.Env, "DATAKIT_CONF"), "DATAKIT_CONF"
	default:
		search := opts.SearchPaths
		if search == nil {
			search = DefaultSearchPaths()
		}
		for _, p := range search {
			if _, err := os.Stat(p); err == nil {
				path, origin = p, "settings file"
				break
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", nil, fmt.Errorf("settings file: %w", err)
			}
		}
		if path == "" {
			return "", nil, nil
		}
	}
	f, err := os.Open(path) // #nosec G304 -- --conf, $DATAKIT_CONF or a fixed default path
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", origin, err)
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, maxConfBytes+1))
	if err != nil {
		return "", nil, fmt.Errorf("%s: read %s: %w", origin, path, err)
	}
	if len(data) > maxConfBytes {
		return "", nil, fmt.Errorf("%s: %s is larger than %d bytes", origin, path, maxConfBytes)
	}
	return path, data, nil
}

// getenv returns the first value of key in env.
func getenv(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// build applies the defaults and then raw to a new Settings, and validates.
func build(raw map[string]rawValue, env environment) (*Settings, error) {
	s := &Settings{}
	var errs []error
	for _, e := range newTable(env.gomaxprocs) {
		if e.def != "" {
			if err := e.set(s, e.def); err != nil {
				errs = append(errs, fmt.Errorf("invalid default for %s: %w", e.name, err))
			}
		}
		if r, ok := raw[e.name]; ok && r.value != "" {
			if err := e.set(s, r.value); err != nil {
				errs = append(errs, fmt.Errorf("invalid value for %s (%s): %w", e.name, r.source, err))
			}
		}
	}
	if s.NodeID == "" && env.newNodeID != nil {
		id, err := env.newNodeID()
		if err != nil {
			errs = append(errs, fmt.Errorf("node_id: %w", err))
		}
		s.NodeID = id
	}
	if len(errs) > 0 {
		// Start-up rules on half-parsed values would only add noise.
		return nil, errors.Join(errs...)
	}
	if errs = s.check(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// randomUUID returns a version 4 UUID in lower case.
func randomUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}
