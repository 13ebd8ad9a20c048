package nodes

import (
	"context"
	"fmt"
	"strings"

	"github.com/datakit-gateway/datakit/engine"
)

// PropertyAccess is how a property (spec §9) may be used: read, written or
// both.
type PropertyAccess uint8

// The property access modes.
const (
	PropertyGet PropertyAccess = 1 << iota
	PropertySet
)

// Properties whose node behaviour differs from the rest.
const (
	propConsumer       = "kong.client.consumer"
	propRequestScheme  = "kong.service.request.scheme"
	propCtxSharedPre   = "kong.ctx.shared."
	propCtxPluginPre   = "kong.ctx.plugin."
	propConfigurePre   = "kong.configuration."
	propResponseStatus = "kong.service.response.status"
	propResponseSource = "kong.response.source"
)

// LookupProperty reports whether name is a property of spec §9, its
// canonical name (kong.service.request_scheme is an alias of
// kong.service.request.scheme) and how it may be used. Exchange
// implementations can use it to dispatch on canonical names.
func LookupProperty(name string) (canonical string, access PropertyAccess, ok bool) {
	switch name {
	case "kong.client.ip", "kong.client.forwarded_ip",
		"kong.client.port", "kong.client.forwarded_port",
		"kong.request.port", "kong.request.forwarded_port",
		"kong.client.protocol",
		"kong.request.forwarded_host", "kong.request.forwarded_scheme",
		"kong.client.credential", "kong.client.consumer_groups",
		"kong.router.route", "kong.router.service",
		"kong.route_id", "kong.route_name", "kong.service_id", "kong.service_name",
		propResponseStatus, propResponseSource,
		"kong.version", "kong.node.id":
		return name, PropertyGet, true
	case propConsumer:
		return name, PropertyGet | PropertySet, true
	case "kong.service.target", "kong.service.upstream", propRequestScheme, "kong.response.status":
		return name, PropertySet, true
	case "kong.service.request_scheme":
		return propRequestScheme, PropertySet, true
	}
	// The key is the whole non-empty remainder, taken literally (dots too).
	switch {
	case hasKey(name, propCtxSharedPre), hasKey(name, propCtxPluginPre):
		return name, PropertyGet | PropertySet, true
	case hasKey(name, propConfigurePre):
		return name, PropertyGet, true
	}
	return "", 0, false
}

func hasKey(name, prefix string) bool {
	return len(name) > len(prefix) && strings.HasPrefix(name, prefix)
}

// isCtxProperty reports a per-request store key, which a nil SET removes.
func isCtxProperty(canonical string) bool {
	return strings.HasPrefix(canonical, propCtxSharedPre) || strings.HasPrefix(canonical, propCtxPluginPre)
}

// propertyConfig is a decoded property node.
type propertyConfig struct {
	name      string // as written, for messages
	canonical string
	access    PropertyAccess
	json      bool
	nonNil    bool
}

// propertyKind is the `property` node type (spec §7.5): GET without an
// input, SET with one, decided once connections are known.
func propertyKind() engine.Kind {
	return engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
		d := &engine.Decl{
			IO:        engine.KeyInput | engine.KeyOutput,
			Input:     engine.TypeAny,
			Output:    engine.TypeAny,
			ModeField: "property",
		}
		var c propertyConfig
		known := false
		if a.Required("property") {
			if c.name = a.String("property", "", 1, 255); c.name != "" {
				if c.canonical, c.access, known = LookupProperty(c.name); !known {
					a.Errorf("property", "unknown property %q", c.name)
				}
			}
		}
		// Only application/json has an effect; the others are Kong's no-ops.
		c.json = a.OneOf("content_type", "", "application/json", "application/octet-stream", "text/plain") == "application/json"
		c.nonNil = a.Bool("non_nil", false)
		if !known {
			return d
		}
		d.Mode = c.mode
		d.Build = func(b *engine.BuildInfo) (engine.Node, error) {
			if b.InputConnected {
				return &propertySetter{c}, nil
			}
			return &propertyGetter{c}, nil
		}
		return d
	})
}

// mode checks the node's mode against the property's access and returns its
// phase constraints (spec §4.2).
func (c propertyConfig) mode(set bool) (engine.ModeRules, error) {
	switch {
	case set && c.access&PropertySet == 0:
		return engine.ModeRules{}, fmt.Errorf("property %q is read-only and cannot be set", c.name)
	case !set && c.access&PropertyGet == 0:
		return engine.ModeRules{}, fmt.Errorf("property %q is write-only; connect an input to set it", c.name)
	case !set:
		return engine.ModeRules{ResponseOnly: c.canonical == propResponseStatus || c.canonical == propResponseSource}, nil
	}
	switch c.canonical {
	case "kong.service.target", "kong.service.upstream", propRequestScheme, propConsumer:
		return engine.ModeRules{AccessOnly: true}, nil
	}
	return engine.ModeRules{}, nil
}

// propertyGetter reads a property; immutable after Build.
type propertyGetter struct{ c propertyConfig }

var _ engine.Node = (*propertyGetter)(nil)

func (n *propertyGetter) Run(_ context.Context, env *engine.Env, _ []any) ([]any, error) {
	v, err := env.Exchange.Property(n.c.canonical)
	if err != nil {
		return nil, err
	}
	if s, ok := v.(string); ok && n.c.json {
		if v, err = engine.DecodeJSON([]byte(s)); err != nil {
			return nil, fmt.Errorf("invalid JSON in property %q", n.c.name)
		}
	}
	// Checked after decoding: the JSON text "null" is a nil value too.
	if v == nil && n.c.nonNil {
		return nil, fmt.Errorf("property %q is nil", n.c.name)
	}
	return []any{v}, nil
}

// propertySetter writes its node-wise input to a property; immutable after
// Build.
type propertySetter struct{ c propertyConfig }

var _ engine.Node = (*propertySetter)(nil)

func (n *propertySetter) Run(_ context.Context, env *engine.Env, in []any) ([]any, error) {
	v := in[0]
	if v == nil {
		switch {
		case n.c.nonNil:
			return nil, fmt.Errorf("cannot set property %q to nil", n.c.name)
		case !isCtxProperty(n.c.canonical):
			return []any{nil}, nil
		}
		// Removes the per-request store key.
		out, err := env.Exchange.SetProperty(n.c.canonical, nil)
		if err != nil {
			return nil, err
		}
		return []any{out}, nil
	}
	arg := v
	if n.c.json {
		b, err := engine.EncodeJSON(v)
		if err != nil {
			return nil, fmt.Errorf("cannot encode property %q: %w", n.c.name, err)
		}
		arg = string(b)
	}
	out, err := env.Exchange.SetProperty(n.c.canonical, arg)
	if err != nil {
		return nil, err
	}
	// The output is the input as received (spec §7.5), not its JSON text;
	// only the consumer setter outputs what the Exchange authenticated.
	if n.c.json && n.c.canonical != propConsumer {
		out = v
	}
	return []any{out}, nil
}
