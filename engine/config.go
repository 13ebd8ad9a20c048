package engine

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Schema limits (spec §2, §5.5).
const (
	MaxNodes     = 64
	maxRefLength = 255
	maxListNames = 64
)

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,254}$`)

const nameRule = `must match ^[A-Za-z_][A-Za-z0-9_-]{0,254}$`

// Implicit node names, in trace order (spec §10).
const (
	nodeRequest         = "request"
	nodeServiceRequest  = "service_request"
	nodeServiceResponse = "service_response"
	nodeResponse        = "response"
	nodeVault           = "vault"
)

var reservedNames = map[string]bool{
	nodeRequest: true, nodeServiceRequest: true, nodeServiceResponse: true, nodeResponse: true, nodeVault: true,
}

// ConfigError lists every problem of a configuration, one `LOCATION: MESSAGE`
// line each, in the order of spec §11.
type ConfigError struct {
	Messages []string
}

func (e *ConfigError) Error() string { return strings.Join(e.Messages, "\n") }

// ref is a parsed connection reference: NODE, NODE.FIELD or NODE.FIELD.KEY….
type ref struct {
	node  string
	field string // "" for node-wise
	path  []string
}

func (r ref) String() string {
	s := r.node
	if r.field != "" {
		s += "." + r.field
	}
	for _, k := range r.path {
		s += "." + k
	}
	return s
}

// declaredConn is one connection as written on a node (before expansion).
type declaredConn struct {
	src, dst ref
	owner    int    // index of the declaring node
	at       string // the declaring field: input, inputs.f, output, outputs.f
}

// declNode is a node while the configuration is being validated.
type declNode struct {
	index     int // position in nodes; -1 for implicit nodes
	name, typ string
	loc       string
	valid     bool // valid unique name and known type: its connections are checked
	decl      *Decl
	conns     []declaredConn
	userIn    map[string]bool // user-defined input names declared in `inputs`
	implicit  bool
	// modeSubject is the value of the attribute named by Decl.ModeField
	// (the property name), shown in phase errors.
	modeSubject string
}

// decoder holds the state of one validation run.
type decoder struct {
	reg    *Registry
	errs   []error
	nodes  []*declNode
	byName map[string]*declNode
	debug  bool
	res    map[string]any
	// vault lists resources.vault entries in byte order; vaultRefs parses them.
	vault     []string
	vaultRefs map[string]vaultRef
}

func (d *decoder) errorf(format string, args ...any) {
	d.errs = append(d.errs, fmt.Errorf(format, args...))
}

// nodeLoc renders `nodes[i] "NAME" (TYPE)`; name and type are shown as
// written and omitted when absent or not strings.
func nodeLoc(i int, raw map[string]any) string {
	loc := "nodes[" + strconv.Itoa(i) + "]"
	if n, ok := raw["name"].(string); ok {
		loc += " " + strconv.Quote(n)
	}
	if t, ok := raw["type"].(string); ok {
		loc += " (" + t + ")"
	}
	return loc
}

// decodeTop handles the top-level object: nodes (shape only), debug, resources.
func (d *decoder) decodeTop(doc any) []any {
	top, ok := doc.(map[string]any)
	if !ok {
		d.errorf("config: expected object, got %s", JSONType(doc))
		return nil
	}
	var rawNodes []any
	switch v := top["nodes"].(type) {
	case nil:
		d.errorf("nodes: required field missing")
	case []any:
		if len(v) < 1 || len(v) > MaxNodes {
			d.errorf("nodes: must contain between 1 and %d nodes, got %d", MaxNodes, len(v))
		} else {
			rawNodes = v
		}
	default:
		d.errorf("nodes: expected array, got %s", JSONType(v))
	}
	return rawNodes
}

// decodeResources decodes `resources` with the registered decoders and
// returns its errors.
func (d *decoder) decodeResources(doc any) []error {
	d.res = map[string]any{}
	top, _ := doc.(map[string]any)
	v := top["resources"]
	if v == nil {
		return nil
	}
	var errs []error
	m, ok := v.(map[string]any)
	if !ok {
		return []error{fmt.Errorf("resources: expected object, got %s", JSONType(v))}
	}
	for _, name := range SortedKeys(m) {
		if name == nodeVault && m[name] != nil {
			errs = append(errs, d.decodeVault(m[name])...)
			continue
		}
		dec, known := d.reg.resources[name]
		if !known {
			errs = append(errs, fmt.Errorf("resources.%s: unknown field", name))
			continue
		}
		if m[name] == nil {
			continue
		}
		obj, ok := m[name].(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("resources.%s: expected object, got %s", name, JSONType(m[name])))
			continue
		}
		// Attrs write "LOC: FIELD: MESSAGE"; for resources that is
		// "resources: cache.strategy: …" — rewritten below to a plain path.
		var aerrs []error
		a := newAttrs("resources", name+".", obj, &aerrs, nil)
		d.res[name] = dec(a)
		a.unknown(nil)
		for _, e := range aerrs {
			errs = append(errs, fmt.Errorf("resources.%s", strings.TrimPrefix(e.Error(), "resources: ")))
		}
	}
	return errs
}

// collectNames is the first pass: names and types of every node, so that
// branch lists and duplicate names can be checked in node order afterwards.
func (d *decoder) collectNames(rawNodes []any) {
	d.byName = map[string]*declNode{}
	for i, rn := range rawNodes {
		n := &declNode{index: i}
		d.nodes = append(d.nodes, n)
		raw, ok := rn.(map[string]any)
		if !ok {
			continue
		}
		n.loc = nodeLoc(i, raw)
		name, nameOK := raw["name"].(string)
		typ, typeOK := raw["type"].(string)
		n.name, n.typ = name, typ
		if nameOK && nameRE.MatchString(name) && !reservedNames[name] {
			if _, dup := d.byName[name]; !dup {
				d.byName[name] = n
				if typeOK {
					_, n.valid = d.reg.kinds[typ]
				}
			}
		}
	}
}

// decodeNode is the second pass over one node: common fields (§2.3), the
// kind's attributes (§2.4), the declared connections.
func (d *decoder) decodeNode(n *declNode, rn any) {
	raw, ok := rn.(map[string]any)
	if !ok {
		d.errorf("nodes[%d]: expected object, got %s", n.index, JSONType(rn))
		return
	}
	fe := func(field, format string, args ...any) {
		d.errorf("%s: %s: %s", n.loc, field, fmt.Sprintf(format, args...))
	}

	var kind Kind
	switch t := raw["type"].(type) {
	case nil:
		fe("type", "required field missing")
	case string:
		if k, known := d.reg.kinds[t]; known {
			kind = k
		} else {
			fe("type", "unknown node type %q; expected one of: %s", t, strings.Join(d.reg.Types(), ", "))
		}
	default:
		fe("type", "expected string, got %s", JSONType(t))
	}
	switch nm := raw["name"].(type) {
	case nil:
		fe("name", "required field missing")
	case string:
		switch {
		case !nameRE.MatchString(nm):
			fe("name", "invalid node name: %s", nameRule)
		case reservedNames[nm]:
			fe("name", "%q is a reserved node name", nm)
		case d.byName[nm] != n:
			fe("name", "duplicate node name (first used by nodes[%d])", d.byName[nm].index)
		}
	default:
		fe("name", "expected string, got %s", JSONType(nm))
	}

	var attrErrs []error
	attrs := newAttrs(n.loc, "", raw, &attrErrs, d.res)
	for _, k := range []string{"type", "name", "input", "inputs", "output", "outputs"} {
		attrs.used[k] = true
	}
	if kind != nil {
		n.decl = kind.Decode(attrs)
	}
	if n.decl == nil {
		n.valid = false
	} else if n.decl.ModeField != "" {
		n.modeSubject, _ = raw[n.decl.ModeField].(string)
	}
	d.decodeIO(n, raw, fe)
	if kind != nil {
		attrs.unknown(nil)
	}
	d.errs = append(d.errs, attrErrs...)
	if n.decl != nil {
		d.checkBranchList(n, "then", n.decl.Then, nil, fe)
		d.checkBranchList(n, "else", n.decl.Else, n.decl.Then, fe)
	}
}

// decodeIO checks the connection keys of a node and records its declared
// connections.
func (d *decoder) decodeIO(n *declNode, raw map[string]any, fe func(field, format string, args ...any)) {
	supports := func(key string, bit IOKeys) bool {
		if n.decl == nil || n.decl.IO&bit != 0 {
			return true
		}
		fe(key, "not supported by %s nodes", n.typ)
		return false
	}
	self := ref{node: n.name}
	add := func(src, dst ref, at string) {
		if n.valid {
			n.conns = append(n.conns, declaredConn{src: src, dst: dst, owner: n.index, at: at})
		}
	}
	hasInput := raw["input"] != nil
	if hasInput && supports("input", KeyInput) {
		if r, ok := d.parseRef(fe, "input", raw["input"], true); ok {
			add(r, self, "input")
		}
	}
	if raw["inputs"] != nil && supports("inputs", KeyInputs) {
		if hasInput {
			fe("inputs", "cannot be used together with input")
		} else {
			for _, kv := range d.ioMap(fe, "inputs", raw["inputs"]) {
				if !d.checkInputField(n, fe, kv.key) {
					continue
				}
				if r, ok := d.parseRef(fe, "inputs."+kv.key, kv.val, true); ok {
					add(r, ref{node: n.name, field: kv.key}, "inputs."+kv.key)
				}
			}
		}
	}
	hasOutput := raw["output"] != nil
	if hasOutput && supports("output", KeyOutput) {
		if r, ok := d.parseRef(fe, "output", raw["output"], false); ok {
			add(self, r, "output")
		}
	}
	if raw["outputs"] != nil && supports("outputs", KeyOutputs) {
		if hasOutput {
			fe("outputs", "cannot be used together with output")
		} else {
			for _, kv := range d.ioMap(fe, "outputs", raw["outputs"]) {
				if !d.checkOutputField(n, fe, kv.key) {
					continue
				}
				if r, ok := d.parseRef(fe, "outputs."+kv.key, kv.val, false); ok {
					add(ref{node: n.name, field: kv.key}, r, "outputs."+kv.key)
				}
			}
		}
	}
}

type keyVal struct {
	key string
	val any
}

// ioMap normalises `inputs`/`outputs` (map or list of one-key maps) into
// entries in byte order of their keys; null values are dropped.
func (d *decoder) ioMap(fe func(field, format string, args ...any), field string, v any) []keyVal {
	var out []keyVal
	switch m := v.(type) {
	case map[string]any:
		for _, k := range SortedKeys(m) {
			if m[k] != nil {
				out = append(out, keyVal{k, m[k]})
			}
		}
	case []any:
		seen := map[string]bool{}
		for i, item := range m {
			one, ok := item.(map[string]any)
			if !ok || len(one) != 1 {
				fe(fmt.Sprintf("%s[%d]", field, i), "expected a map with exactly one key")
				continue
			}
			for k, val := range one {
				if seen[k] {
					fe(fmt.Sprintf("%s[%d]", field, i), "duplicate field %q", k)
					continue
				}
				seen[k] = true
				if val != nil {
					out = append(out, keyVal{k, val})
				}
			}
		}
		sortKeyVals(out)
	default:
		fe(field, "expected object, got %s", JSONType(v))
	}
	return out
}

func sortKeyVals(kv []keyVal) {
	for i := 1; i < len(kv); i++ {
		for j := i; j > 0 && kv[j].key < kv[j-1].key; j-- {
			kv[j], kv[j-1] = kv[j-1], kv[j]
		}
	}
}

func (d *decoder) checkInputField(n *declNode, fe func(field, format string, args ...any), f string) bool {
	if n.decl == nil {
		return true
	}
	if n.decl.UserInputs {
		if !nameRE.MatchString(f) {
			fe("inputs."+f, "invalid input field name: %s", nameRule)
			return false
		}
		if n.userIn == nil {
			n.userIn = map[string]bool{}
		}
		n.userIn[f] = true
		return true
	}
	if fieldIndex(n.decl.Inputs, f) >= 0 {
		return true
	}
	fe("inputs."+f, "unknown input field %q; expected one of: %s", f, fieldNames(n.decl.Inputs))
	return false
}

func (d *decoder) checkOutputField(n *declNode, fe func(field, format string, args ...any), f string) bool {
	if n.decl == nil || fieldIndex(n.decl.Outputs, f) >= 0 {
		return true
	}
	fe("outputs."+f, "unknown output field %q; expected one of: %s", f, fieldNames(n.decl.Outputs))
	return false
}

func fieldIndex(fields []Field, name string) int {
	for i, f := range fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

func fieldNames(fields []Field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// parseRef checks the syntax of a reference (spec §3.1).
func (d *decoder) parseRef(fe func(field, format string, args ...any), field string, v any, source bool) (ref, bool) {
	s, ok := v.(string)
	if !ok {
		fe(field, "expected string, got %s", JSONType(v))
		return ref{}, false
	}
	if n := len(s); n < 1 || n > maxRefLength {
		fe(field, "length must be between 1 and %d, got %d", maxRefLength, n)
		return ref{}, false
	}
	parts := strings.Split(s, ".")
	for _, p := range parts {
		if p == "" {
			fe(field, "invalid connection reference %q: expected \"NODE\" or \"NODE.FIELD\"", s)
			return ref{}, false
		}
	}
	if !source && len(parts) > 2 {
		fe(field, "invalid connection reference %q: a target cannot have a sub-path", s)
		return ref{}, false
	}
	r := ref{node: parts[0]}
	if len(parts) > 1 {
		r.field = parts[1]
		r.path = parts[2:]
	}
	return r, true
}

// checkBranchList validates a branch's then/else list (spec §11).
func (d *decoder) checkBranchList(n *declNode, field string, list, other []string, fe func(field, format string, args ...any)) {
	seen := map[string]bool{}
	for k, name := range list {
		at := fmt.Sprintf("%s[%d]", field, k)
		switch {
		case reservedNames[name]:
			fe(at, "cannot list implicit node %q", name)
		case name == n.name:
			fe(at, "a branch cannot list itself")
		case d.byName[name] == nil:
			fe(at, "unknown node %q", name)
		case seen[name]:
			fe(at, "duplicate entry %q", name)
		case contains(other, name):
			fe(at, "%q is also listed in then", name)
		}
		seen[name] = true
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
