package nodes

import (
	"context"
	"fmt"
	"slices"

	"github.com/datakit-gateway/datakit/engine"
)

// exitInputs are the exit node's fields (spec §3.3), in order.
var exitInputs = []engine.Field{
	{Name: "body", Type: engine.TypeAny},
	{Name: "headers", Type: engine.TypeMap},
}

// exitKind returns the exit node type (spec §7.4): it ends the request with a
// response built from its inputs.
func exitKind() engine.Kind {
	return engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
		status := int(a.Int("status", 200, 200, 599))
		a.Bool("warn_headers_sent", false) // accepted for Kong compatibility; no effect
		return &engine.Decl{
			IO:     engine.KeyInput | engine.KeyInputs,
			Inputs: slices.Clone(exitInputs), // the engine owns what it is given
			Build: func(b *engine.BuildInfo) (engine.Node, error) {
				n := &exitNode{status: status, body: 0, headers: 1}
				if len(b.InputFields) > 0 {
					n.body, n.headers = -1, -1
					for i, f := range b.InputFields {
						switch f.Name {
						case "body":
							n.body = i
						case "headers":
							n.headers = i
						}
					}
				}
				if n.body >= 0 && n.body < len(b.InputContentTypes) {
					n.bodyCT = b.InputContentTypes[n.body]
				}
				return n, nil
			},
		}
	})
}

// exitNode is a compiled exit node; immutable and safe for concurrent use.
type exitNode struct {
	status        int
	body, headers int    // positions in Run's in slice (-1: absent)
	bodyCT        string // content type of a string body straight from its source
}

var _ engine.Node = (*exitNode)(nil)

// Run builds the response and hands it to the plan; it has no outputs.
func (n *exitNode) Run(_ context.Context, env *engine.Env, in []any) ([]any, error) {
	input := func(i int) any {
		if i < 0 || i >= len(in) {
			return nil
		}
		return in[i]
	}
	resp, err := n.response(input(n.body), input(n.headers))
	if err != nil {
		return nil, err
	}
	env.Exit(resp)
	return nil, nil
}

// response applies §7.4 and §6.3. Header lines with nil Values stay in the
// response so that the gateway also drops its standard header of that name.
func (n *exitNode) response(bodyIn, headersIn any) (*engine.Response, error) {
	lines, err := engine.HeaderLines(headersIn)
	if err != nil {
		return nil, err
	}
	body, isJSON, err := engine.EncodeBody(bodyIn)
	if err != nil {
		return nil, fmt.Errorf("invalid body: %w", err)
	}
	hasCT := false
	for _, l := range lines {
		if l.Name == "Content-Type" {
			hasCT = true // set, or removed with null: either way no default
			break
		}
	}
	if !hasCT && len(body) > 0 {
		ct := "text/plain; charset=utf-8"
		switch {
		case isJSON:
			ct = "application/json"
		case n.bodyCT != "":
			ct = n.bodyCT
		}
		lines = insertHeaderLine(lines, engine.HeaderLine{Name: "Content-Type", Values: []string{ct}})
	}
	return &engine.Response{Status: n.status, Headers: lines, Body: body}, nil
}

// insertHeaderLine adds a line keeping the slice sorted by name, as
// HeaderLines returns it.
func insertHeaderLine(lines []engine.HeaderLine, l engine.HeaderLine) []engine.HeaderLine {
	i := 0
	for i < len(lines) && lines[i].Name < l.Name {
		i++
	}
	lines = append(lines, engine.HeaderLine{})
	copy(lines[i+1:], lines[i:])
	lines[i] = l
	return lines
}
