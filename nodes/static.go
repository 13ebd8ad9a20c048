package nodes

import (
	"context"
	"unicode/utf8"

	"github.com/datakit-gateway/datakit/engine"
)

// staticKind is the `static` node type (spec §7.3): its `values` are output
// fields typed by their values and, node-wise, a literal object.
func staticKind() engine.Kind {
	return engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
		d := &engine.Decl{IO: engine.KeyOutput | engine.KeyOutputs, Output: engine.TypeObject}
		if !a.Required("values") {
			return d
		}
		values, ok := a.Object("values")
		if !ok {
			return d
		}
		keys := engine.SortedKeys(values)
		for _, k := range keys {
			if n := utf8.RuneCountInString(k); n < 1 || n > 255 {
				a.Errorf("values."+k, "length must be between 1 and 255, got %d", n)
			}
		}
		out := make([]any, len(keys))
		d.Outputs = make([]engine.Field, len(keys))
		for i, k := range keys {
			out[i] = values[k]
			d.Outputs[i] = engine.Field{Name: k, Type: literalType(values[k])}
		}
		d.Literal = values
		d.Build = func(*engine.BuildInfo) (engine.Node, error) {
			if len(out) == 0 {
				// No fields: the node-wise output is the empty literal itself.
				return staticNode{values}, nil
			}
			return staticNode(out), nil
		}
		return d
	})
}

// staticNode holds the outputs in field order; it is never written after
// Build, so concurrent requests share it (and the values inside, which
// consumers must treat as read-only, as every runtime value).
type staticNode []any

var _ engine.Node = staticNode(nil)

// Run returns a copy of the outputs so the caller may keep or modify the
// slice without touching the node.
func (n staticNode) Run(context.Context, *engine.Env, []any) ([]any, error) {
	out := make([]any, len(n))
	copy(out, n)
	return out, nil
}

// literalType is the connection type of a static value (spec §3.3).
func literalType(v any) engine.Type {
	switch engine.JSONType(v) {
	case "string":
		return engine.TypeString
	case "number":
		return engine.TypeNumber
	case "boolean":
		return engine.TypeBoolean
	case "array":
		return engine.TypeArray
	case "object":
		return engine.TypeObject
	}
	return engine.TypeAny
}
