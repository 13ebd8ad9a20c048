package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file holds test-only node kinds registered under the real type names.
// They declare the fields of spec §3.3 and do trivial work, so the engine can
// be tested without package nodes.

// fakeHooks lets a test take over the runtime behaviour of fake kinds.
type fakeHooks struct {
	// call, if set, runs every call node instead of the default behaviour.
	call func(ctx context.Context, name string, in []any) ([]any, error)
	// jq runs the jq nodes whose filter is "hook".
	jq func(ctx context.Context, name string) ([]any, error)
}

var callInputs = []Field{
	{"body", TypeAny}, {"headers", TypeMap}, {"query", TypeMap}, {"url", TypeString},
	{"http_proxy", TypeString}, {"https_proxy", TypeString},
	{"proxy_auth_username", TypeString}, {"proxy_auth_password", TypeString},
}

var callOutputs = []Field{{"body", TypeAny}, {"headers", TypeMap}, {"status", TypeNumber}, {"raw_body", TypeString}}

// literalType types a static value as spec §3.3 says.
func literalType(v any) Type {
	switch v.(type) {
	case string:
		return TypeString
	case int, float64:
		return TypeNumber
	case bool:
		return TypeBoolean
	case []any:
		return TypeArray
	case map[string]any:
		return TypeObject
	}
	return TypeAny
}

func fakeRegistry(h *fakeHooks) *Registry {
	if h == nil {
		h = &fakeHooks{}
	}
	reg := NewRegistry()
	reg.Register("static", KindFunc(fakeStatic))
	reg.Register("jq", KindFunc(func(a *Attrs) *Decl { return fakeJQ(a, h) }))
	reg.Register("call", KindFunc(func(a *Attrs) *Decl { return fakeCall(a, h) }))
	reg.Register("exit", KindFunc(fakeExit))
	reg.Register("property", KindFunc(fakeProperty))
	reg.Register("branch", KindFunc(func(a *Attrs) *Decl {
		return &Decl{IO: KeyInput, Input: TypeBoolean,
			Then: a.StringList("then", 1, 64, 255), Else: a.StringList("else", 1, 64, 255)}
	}))
	// The other real type names, so that `unknown node type` lists all twelve.
	for _, name := range []string{"cache", "json_to_xml", "jwt_decode", "jwt_sign", "jwt_verify", "xml_to_json"} {
		reg.Register(name, KindFunc(func(a *Attrs) *Decl { return fakeJQ(a, h) }))
	}
	return reg
}

func fakeStatic(a *Attrs) *Decl {
	a.Required("values")
	vals, _ := a.Object("values")
	d := &Decl{IO: KeyOutput | KeyOutputs, Literal: vals}
	keys := SortedKeys(vals)
	for _, k := range keys {
		d.Outputs = append(d.Outputs, Field{k, literalType(vals[k])})
	}
	d.Build = func(b *BuildInfo) (Node, error) {
		return NodeFunc(func(ctx context.Context, env *Env, in []any) ([]any, error) {
			out := make([]any, len(keys))
			for i, k := range keys {
				out[i] = vals[k]
			}
			return out, nil
		}), nil
	}
	return d
}

// fakeJQ understands a few filters: `.` and `.a.b` paths, a JSON literal,
// `error: MSG`, `panic`, `count` (calls since build; proves per-run work),
// `hook` (h.jq); anything else is the identity.
func fakeJQ(a *Attrs, h *fakeHooks) *Decl {
	a.Required("jq")
	src := a.String("jq", "", 1, 10240)
	return &Decl{IO: KeyInput | KeyInputs | KeyOutput, Input: TypeAny, UserInputs: true, Output: TypeAny,
		Build: func(b *BuildInfo) (Node, error) {
			var lit any
			isLit := false
			if v, err := DecodeJSON([]byte(src)); err == nil {
				lit, isLit = v, true
			}
			var path []string
			if strings.HasPrefix(src, ".") && src != "." {
				path = strings.Split(src[1:], ".")
			}
			selfIn := len(b.InputFields) == 1 && b.InputFields[0].Name == SelfField
			return NodeFunc(func(ctx context.Context, env *Env, in []any) ([]any, error) {
				var dot any
				switch {
				case selfIn:
					dot = in[0]
				case len(b.InputFields) > 0:
					m := make(map[string]any, len(b.InputFields))
					for i, f := range b.InputFields {
						m[f.Name] = in[i]
					}
					dot = m
				}
				switch {
				case isLit:
					return []any{lit}, nil
				case path != nil:
					return []any{Index(dot, path)}, nil
				case strings.HasPrefix(src, "error: "):
					return nil, errors.New("jq: " + strings.TrimPrefix(src, "error: "))
				case src == "panic":
					panic("fake jq panicked")
				case src == "hook":
					return h.jq(ctx, b.Name)
				}
				return []any{dot}, nil
			}), nil
		}}
}

// fakeCall declares the call fields; its default run waits `delay` ms
// (honouring ctx) and answers `respond` (default {"url": url}) with `status`.
func fakeCall(a *Attrs, h *fakeHooks) *Decl {
	url := a.String("url", "", 1, 2048)
	a.String("method", "GET", 1, 32)
	a.Int("timeout", 60000, 0, 2147483646)
	delay := time.Duration(a.Int("delay", 0, 0, 60000)) * time.Millisecond
	status := int(a.Int("status", 200, 100, 599))
	respond, hasRespond := a.Raw("respond")
	return &Decl{IO: KeyInput | KeyInputs | KeyOutput | KeyOutputs, Inputs: callInputs, Outputs: callOutputs, Async: true,
		Build: func(b *BuildInfo) (Node, error) {
			return NodeFunc(func(ctx context.Context, env *Env, in []any) ([]any, error) {
				if h.call != nil {
					return h.call(ctx, b.Name, in)
				}
				if delay > 0 {
					t := time.NewTimer(delay)
					defer t.Stop()
					select {
					case <-t.C:
					case <-ctx.Done():
						return nil, fmt.Errorf("request failed: %w", ctx.Err())
					}
				}
				body := any(map[string]any{"url": url})
				if hasRespond {
					body = respond
				}
				raw, _ := EncodeJSON(body)
				outs := []any{body, map[string]any{"Content-Type": "application/json"}, status, string(raw)}
				if status < 200 || status > 299 {
					return outs, fmt.Errorf("non-2XX response code: %d", status)
				}
				return outs, nil
			}), nil
		}}
}

func fakeExit(a *Attrs) *Decl {
	status := int(a.Int("status", 200, 200, 599))
	a.Bool("warn_headers_sent", false)
	return &Decl{IO: KeyInput | KeyInputs, Inputs: []Field{{"body", TypeAny}, {"headers", TypeMap}},
		Build: func(b *BuildInfo) (Node, error) {
			return NodeFunc(func(ctx context.Context, env *Env, in []any) ([]any, error) {
				lines, err := HeaderLines(in[1])
				if err != nil {
					return nil, err
				}
				body, _, err := EncodeBody(in[0])
				if err != nil {
					return nil, err
				}
				env.Exit(&Response{Status: status, Headers: lines, Body: body})
				return nil, nil
			}), nil
		}}
}

// fakeProperties is a small property table: GET/SET support and phase rules.
var fakeProperties = map[string]struct {
	get, set             bool
	responseOnly, access bool
}{
	"kong.client.ip":               {get: true},
	"kong.service.target":          {set: true, access: true},
	"kong.service.response.status": {get: true, responseOnly: true},
}

func fakeProperty(a *Attrs) *Decl {
	a.Required("property")
	name := a.String("property", "", 1, 255)
	a.OneOf("content_type", "", "application/json", "application/octet-stream", "text/plain")
	a.Bool("non_nil", false)
	info, known := fakeProperties[name]
	if strings.HasPrefix(name, "kong.ctx.shared.") && len(name) > len("kong.ctx.shared.") {
		info.get, info.set, known = true, true, true
	}
	if name != "" && !known {
		a.Errorf("property", "unknown property %q", name)
	}
	set := false
	return &Decl{IO: KeyInput | KeyOutput, Input: TypeAny, Output: TypeAny, ModeField: "property",
		Mode: func(connected bool) (ModeRules, error) {
			set = connected
			switch {
			case connected && !info.set:
				return ModeRules{}, fmt.Errorf("property %q is read-only and cannot be set", name)
			case !connected && !info.get:
				return ModeRules{}, fmt.Errorf("property %q is write-only; connect an input to set it", name)
			}
			return ModeRules{ResponseOnly: !connected && info.responseOnly, AccessOnly: connected && info.access}, nil
		},
		Build: func(b *BuildInfo) (Node, error) {
			if set != b.InputConnected {
				return nil, errors.New("mode and build disagree")
			}
			return NodeFunc(func(ctx context.Context, env *Env, in []any) ([]any, error) {
				if b.InputConnected {
					v, err := env.Exchange.SetProperty(name, in[0])
					return []any{v}, err
				}
				v, err := env.Exchange.Property(name)
				return []any{v}, err
			}), nil
		}}
}

// fakeEx is an in-memory Exchange.
type fakeEx struct {
	mu       sync.Mutex
	req      map[string]any
	resp     map[string]any
	props    map[string]any
	reads    []string
	sreq     *Message
	response *Message
}

func newFakeEx() *fakeEx {
	return &fakeEx{req: map[string]any{}, resp: map[string]any{}, props: map[string]any{}}
}

func (f *fakeEx) Request(ctx context.Context, field string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, "request."+field)
	return f.req[field], nil
}

func (f *fakeEx) ServiceResponse(ctx context.Context, field string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, "service_response."+field)
	return f.resp[field], nil
}

func (f *fakeEx) ApplyServiceRequest(m *Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sreq = m
	return nil
}

func (f *fakeEx) ApplyResponse(m *Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.response = m
	return nil
}

func (f *fakeEx) Property(name string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.props[name], nil
}

func (f *fakeEx) SetProperty(name string, v any) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.props[name] = v
	return v, nil
}

// mustCompile compiles a YAML config with the fake registry.
func mustCompile(t testing.TB, h *fakeHooks, cfg string, opts Options) *Plan {
	t.Helper()
	p, err := CompileBytes([]byte(cfg), fakeRegistry(h), opts)
	if err != nil {
		t.Fatalf("CompileBytes(%q) = %v", cfg, err)
	}
	return p
}
