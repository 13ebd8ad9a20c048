package engine

import (
	"fmt"
	"strconv"
)

// implicitDecls declares the fields of the implicit nodes (spec §3.3); vault's
// outputs come from resources.vault.
var implicitDecls = map[string]*Decl{
	nodeRequest: {Outputs: []Field{
		{"body", TypeAny}, {"headers", TypeMap}, {"query", TypeMap}, {"path", TypeString},
		{"raw_path", TypeString}, {"port", TypeNumber}, {"method", TypeString},
		{"scheme", TypeString}, {"version", TypeNumber},
	}},
	nodeServiceRequest:  {Inputs: []Field{{"body", TypeAny}, {"headers", TypeMap}, {"query", TypeMap}}},
	nodeServiceResponse: {Outputs: []Field{{"body", TypeAny}, {"headers", TypeMap}, {"status", TypeNumber}, {"raw_body", TypeString}}},
	nodeResponse:        {Inputs: []Field{{"body", TypeAny}, {"headers", TypeMap}}},
}

// edge is one connection after expansion: a value flowing from a source
// node's field (or node-wise value) into one input field of a target.
type edge struct {
	src, dst *declNode
	srcField int      // index into the source's Outputs; -1 for node-wise
	path     []string // sub-path read into the source value
	pick     string   // any-typed node-wise source expanded into field pick
	dstField string   // target input field name; SelfField for node-wise
	srcType  Type     // declared source type (TypeAny for sub-paths)
	dstType  Type
	srcRef   string // references as written after expansion, for messages
	dstRef   string
	srcLabel string // DOT labels: field names, $self for node-wise ends
	dstLabel string
	conn     *declaredConn
}

// implicitNode returns the declNode of an implicit node, creating it on first
// use (implicit nodes exist in a plan only when a connection uses them).
func (d *decoder) implicitNode(name string) *declNode {
	if n, ok := d.byName[name]; ok {
		return n
	}
	decl := implicitDecls[name]
	if name == nodeVault {
		decl = &Decl{}
		for _, k := range d.vault {
			decl.Outputs = append(decl.Outputs, Field{k, TypeString})
		}
	}
	n := &declNode{index: -1, name: name, typ: name, decl: decl, valid: true, implicit: true}
	d.byName[name] = n
	return n
}

func (d *decoder) lookup(name string) *declNode {
	if reservedNames[name] {
		return d.implicitNode(name)
	}
	if n := d.byName[name]; n != nil && n.valid {
		return n
	}
	return nil
}

func hasOutputs(decl *Decl) bool { return len(decl.Outputs) > 0 || decl.Output != TypeNone }
func hasInputs(decl *Decl) bool {
	return len(decl.Inputs) > 0 || decl.Input != TypeNone || decl.UserInputs
}

// connect resolves, expands and type-checks every declared connection in
// connection order (spec §3.2), and reports conflicts (§3.6).
func (d *decoder) connect() []*edge {
	var edges []*edge
	seen := map[string]bool{}
	occupied := map[string]*edge{} // "node\x00field" → edge
	selfOrUser := map[*declNode]*edge{}
	for _, n := range d.nodes {
		for i := range n.conns {
			c := &n.conns[i]
			key := c.src.String() + "\x00" + c.dst.String()
			if seen[key] {
				continue // the same edge written on both sides is kept once
			}
			seen[key] = true
			expanded, err := d.resolve(c)
			if err != "" {
				d.connErr(c, c.src.String(), c.dst.String(), err)
				continue
			}
			for _, e := range expanded {
				if reason := checkTypes(e); reason != "" {
					d.connErr(c, e.srcRef, e.dstRef, reason)
					continue
				}
				okey := e.dst.name + "\x00" + e.dstField
				prev := occupied[okey]
				if prev == nil && e.dst.decl.UserInputs {
					// The node-wise input of jq/json_to_xml excludes its
					// user-defined fields and vice versa.
					if first := selfOrUser[e.dst]; first != nil && (first.dstField == SelfField) != (e.dstField == SelfField) {
						prev = first
					}
				}
				if prev != nil {
					d.connErr(c, e.srcRef, e.dstRef, fmt.Sprintf("conflicts with existing connection (%q -> %q)", prev.srcRef, prev.dstRef))
					continue
				}
				occupied[okey] = e
				if e.dst.decl.UserInputs && selfOrUser[e.dst] == nil {
					selfOrUser[e.dst] = e
				}
				edges = append(edges, e)
			}
		}
	}
	return edges
}

func (d *decoder) connErr(c *declaredConn, src, dst, reason string) {
	d.errorf("%s: %s: invalid connection (%q -> %q): %s", d.nodes[c.owner].loc, c.at, src, dst, reason)
}

// resolve turns one declared connection into its expanded edges, or returns
// the reason it is invalid.
func (d *decoder) resolve(c *declaredConn) ([]*edge, string) {
	src, dst := d.lookup(c.src.node), d.lookup(c.dst.node)
	switch {
	case src == nil:
		return nil, fmt.Sprintf("unknown node %q", c.src.node)
	case dst == nil:
		return nil, fmt.Sprintf("unknown node %q", c.dst.node)
	case src == dst:
		return nil, "a node cannot connect to itself"
	case !hasOutputs(src.decl):
		return nil, fmt.Sprintf("node %q has no outputs", src.name)
	case !hasInputs(dst.decl):
		return nil, fmt.Sprintf("node %q has no inputs", dst.name)
	}
	base := edge{src: src, dst: dst, srcField: -1, path: c.src.path, conn: c, srcLabel: SelfField}
	srcFields := src.decl.Outputs
	switch {
	case c.src.field != "":
		i := fieldIndex(srcFields, c.src.field)
		if i < 0 {
			return nil, fmt.Sprintf("node %q has no output field %q", src.name, c.src.field)
		}
		base.srcField, base.srcType, base.srcLabel = i, srcFields[i].Type, c.src.field
	case len(srcFields) > 0:
		base.srcType = TypeObject
	default:
		base.srcType = src.decl.Output
	}
	if len(c.src.path) > 0 {
		base.srcType = TypeAny
		base.srcLabel = c.src.String()[len(c.src.node)+1:]
	}
	base.srcRef = c.src.String()

	if c.dst.field != "" {
		var t Type
		switch {
		case dst.decl.UserInputs:
			t = TypeAny
		case fieldIndex(dst.decl.Inputs, c.dst.field) >= 0:
			t = dst.decl.Inputs[fieldIndex(dst.decl.Inputs, c.dst.field)].Type
		default:
			return nil, fmt.Sprintf("node %q has no input field %q", dst.name, c.dst.field)
		}
		e := base
		e.dstField, e.dstType, e.dstLabel, e.dstRef = c.dst.field, t, c.dst.field, c.dst.String()
		return []*edge{&e}, ""
	}
	if len(dst.decl.Inputs) == 0 {
		e := base
		e.dstField, e.dstType, e.dstLabel, e.dstRef = SelfField, dst.decl.Input, SelfField, dst.name
		return []*edge{&e}, ""
	}
	return expand(base, dst)
}

// expand connects a node-wise target with fixed input fields (spec §3.5).
func expand(base edge, dst *declNode) ([]*edge, string) {
	var out []*edge
	switch {
	case base.srcType == TypeObject && len(base.path) == 0:
		for _, f := range dst.decl.Inputs {
			i := fieldIndex(base.src.decl.Outputs, f.Name)
			if i < 0 {
				continue
			}
			e := base
			e.srcField, e.srcType, e.srcLabel = i, base.src.decl.Outputs[i].Type, f.Name
			e.srcRef = base.src.name + "." + f.Name
			e.dstField, e.dstType, e.dstLabel, e.dstRef = f.Name, f.Type, f.Name, dst.name+"."+f.Name
			out = append(out, &e)
		}
		if len(out) == 0 {
			return nil, fmt.Sprintf("no common fields between %q and %q", base.src.name, dst.name)
		}
	case base.srcType == TypeAny:
		for _, f := range dst.decl.Inputs {
			e := base
			e.pick = f.Name
			e.dstField, e.dstType, e.dstLabel, e.dstRef = f.Name, f.Type, f.Name, dst.name+"."+f.Name
			out = append(out, &e)
		}
	default:
		return nil, fmt.Sprintf("type mismatch: %s -> object", base.srcType)
	}
	return out, ""
}

// literal returns the static value an edge carries, if its source is a
// literal (a static node's values) read without sub-path.
func (e *edge) literal() (any, bool) {
	lit := e.src.decl.Literal
	if lit == nil || len(e.path) > 0 || e.pick != "" {
		return nil, false
	}
	if e.srcField < 0 {
		return lit, true
	}
	return lit[e.src.decl.Outputs[e.srcField].Name], true
}

// checkTypes applies the compatibility table of spec §3.4 to one edge.
func checkTypes(e *edge) string {
	s, t := e.srcType, e.dstType
	lit, isLit := e.literal()
	switch {
	case t == TypeAny:
		return ""
	case s == TypeAny:
		if isLit && lit != nil {
			return checkLiteral(e, lit)
		}
		return ""
	case s == t:
		return ""
	case (s == TypeString || s == TypeNumber) && (t == TypeString || t == TypeNumber):
		if isLit {
			return checkLiteral(e, lit)
		}
		return ""
	case s == TypeObject && t == TypeMap && isLit:
		return checkLiteral(e, lit)
	}
	return fmt.Sprintf("type mismatch: %s -> %s", s, t)
}

// checkLiteral converts a static literal into its target now, as the runtime
// would (spec §3.4: `invalid value: …`).
func checkLiteral(e *edge, v any) string {
	if _, err := Convert(v, e.dstType); err != nil {
		return "invalid value: " + mismatchMessage(e.dstField, e.srcRef, e.dstType, v)
	}
	if e.dstType == TypeMap && e.dstField == "headers" {
		if _, err := HeaderLines(v); err != nil {
			return "invalid value: " + err.Error()
		}
	}
	return ""
}

// mismatchMessage is the runtime type error of spec §5.4.
func mismatchMessage(field, source string, want Type, got any) string {
	return "type mismatch for input " + strconv.Quote(field) + " (from " + strconv.Quote(source) + "): expected " + want.String() + ", got " + JSONType(got)
}
