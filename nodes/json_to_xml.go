package nodes

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/datakit-gateway/datakit/engine"
)

// jsonToXMLKind is the `json_to_xml` node type (spec §7.9). Its string
// output is XML: written to a body it gets `application/xml` (§6.3).
func jsonToXMLKind() engine.Kind {
	return engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
		d := &engine.Decl{
			IO:                engine.KeyInput | engine.KeyInputs | engine.KeyOutput,
			Input:             engine.TypeAny,
			UserInputs:        true,
			Output:            engine.TypeString,
			OutputContentType: "application/xml",
		}
		naming := decodeXMLNaming(a)
		root := a.String("root_element_name", "", 1, 64)
		if root != "" && !isXMLName(root) {
			a.Errorf("root_element_name", "invalid XML name %q", root)
		}
		d.Build = func(b *engine.BuildInfo) (engine.Node, error) {
			n := &jsonToXMLNode{naming: naming, root: root}
			if len(b.InputFields) > 0 && (len(b.InputFields) != 1 || b.InputFields[0].Name != engine.SelfField) {
				n.fields = make([]string, len(b.InputFields))
				for i, f := range b.InputFields {
					n.fields[i] = f.Name
				}
			}
			return n, nil
		}
		return d
	})
}

// jsonToXMLNode is a configured json_to_xml node; immutable after Build and
// safe for concurrent use.
type jsonToXMLNode struct {
	naming xmlNaming
	root   string   // root_element_name, or ""
	fields []string // user-defined inputs, or nil for the node-wise input
}

var _ engine.Node = (*jsonToXMLNode)(nil)

func (n *jsonToXMLNode) Run(_ context.Context, _ *engine.Env, in []any) ([]any, error) {
	var v any
	if n.fields != nil {
		m := make(map[string]any, len(n.fields))
		for i, f := range n.fields {
			m[f] = in[i]
		}
		v = m
	} else if len(in) > 0 {
		v = in[0]
	}
	if s, ok := v.(string); ok {
		parsed, err := engine.DecodeJSON([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		v = parsed
	}
	if v == nil {
		return []any{nil}, nil
	}
	out, err := n.convert(v)
	if err != nil {
		return nil, err
	}
	return []any{out}, nil
}

// convert writes v as XML: no declaration, no indentation, keys in byte order.
func (n *jsonToXMLNode) convert(v any) (string, error) {
	var b strings.Builder
	if n.root != "" {
		if arr, ok := v.([]any); ok {
			b.WriteString("<" + n.root + ">")
			for _, item := range arr {
				if err := n.element(&b, "item", item); err != nil {
					return "", err
				}
			}
			b.WriteString("</" + n.root + ">")
			return b.String(), nil
		}
		if err := n.element(&b, n.root, v); err != nil {
			return "", err
		}
		return b.String(), nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return "", fmt.Errorf("input must be an object when root_element_name is unset")
	}
	for _, k := range engine.SortedKeys(obj) {
		if err := n.element(&b, k, obj[k]); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// element writes the element(s) k holding v.
func (n *jsonToXMLNode) element(b *strings.Builder, k string, v any) error {
	if !isXMLName(k) {
		return fmt.Errorf("invalid XML name %q", k)
	}
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			b.WriteString("<" + k + "></" + k + ">")
		}
		for _, item := range x {
			inner, isArr := item.([]any)
			if !isArr {
				if err := n.element(b, k, item); err != nil {
					return err
				}
				continue
			}
			b.WriteString("<" + k + ">")
			for _, e := range inner {
				if err := n.element(b, "item", e); err != nil {
					return err
				}
			}
			b.WriteString("</" + k + ">")
		}
		return nil
	case map[string]any:
		return n.object(b, k, x)
	}
	text, ok := xmlScalar(v)
	if !ok {
		return fmt.Errorf("cannot convert %s to XML", engine.JSONType(v))
	}
	b.WriteString("<" + k + ">")
	escapeXML(b, text, false)
	b.WriteString("</" + k + ">")
	return nil
}

// object writes element k for an object: attributes, then text, then the
// child elements, each in byte order.
func (n *jsonToXMLNode) object(b *strings.Builder, k string, obj map[string]any) error {
	attrs := map[string]string{}
	addAttr := func(name string, v any) error {
		s, ok := xmlScalar(v)
		if !ok {
			return fmt.Errorf("invalid attribute value for %q", name)
		}
		if !isXMLName(name) {
			return fmt.Errorf("invalid XML name %q", name)
		}
		attrs[name] = s
		return nil
	}
	var text string
	var children []string
	keys := engine.SortedKeys(obj)
	if n.naming.attrBlock != "" {
		if block, ok := obj[n.naming.attrBlock]; ok && block != nil {
			m, isObj := block.(map[string]any)
			if !isObj {
				return fmt.Errorf("invalid attribute value for %q", n.naming.attrBlock)
			}
			for _, name := range engine.SortedKeys(m) {
				if err := addAttr(name, m[name]); err != nil {
					return err
				}
			}
		}
	}
	for _, key := range keys {
		switch {
		case key == n.naming.textBlock:
			s, ok := xmlScalar(obj[key])
			if !ok {
				return fmt.Errorf("invalid text value for %q", key)
			}
			text = s
		case n.naming.attrBlock != "" && key == n.naming.attrBlock:
		case n.naming.attrPrefix != "" && strings.HasPrefix(key, n.naming.attrPrefix):
			// A prefixed key overrides a block entry of the same name.
			if err := addAttr(key[len(n.naming.attrPrefix):], obj[key]); err != nil {
				return err
			}
		default:
			children = append(children, key)
		}
	}
	b.WriteString("<" + k)
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b.WriteString(" " + name + `="`)
		escapeXML(b, attrs[name], true)
		b.WriteString(`"`)
	}
	b.WriteString(">")
	escapeXML(b, text, false)
	for _, c := range children {
		if err := n.element(b, c, obj[c]); err != nil {
			return err
		}
	}
	b.WriteString("</" + k + ">")
	return nil
}

// xmlScalar is the text of a scalar value; ok is false for objects and arrays.
func xmlScalar(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "null", true
	case string:
		return x, true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	case int, int64, float64:
		return engine.FormatNumber(x), true
	}
	return "", false
}

// escapeXML writes s as character data (or an attribute value): markup
// characters as entities, characters XML cannot hold as U+FFFD.
func escapeXML(b *strings.Builder, s string, attr bool) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune('\uFFFD')
			i++
			continue
		}
		i += size
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"' && attr:
			b.WriteString("&quot;")
		case r == '\r':
			b.WriteString("&#xD;")
		case (r == '\n' || r == '\t') && attr:
			fmt.Fprintf(b, "&#x%X;", r)
		case !isXMLChar(r):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
}

// isXMLChar reports whether r may appear in an XML 1.0 document.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// isXMLName reports whether s is an XML 1.0 Name (fifth edition).
func isXMLName(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for i, r := range s {
		if !isNameStartChar(r) && (i == 0 || !isNameChar(r)) {
			return false
		}
	}
	return true
}

func isNameStartChar(r rune) bool {
	switch {
	case r == ':' || r == '_' || 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z':
		return true
	case 0xC0 <= r && r <= 0xD6, 0xD8 <= r && r <= 0xF6, 0xF8 <= r && r <= 0x2FF,
		0x370 <= r && r <= 0x37D, 0x37F <= r && r <= 0x1FFF, 0x200C <= r && r <= 0x200D,
		0x2070 <= r && r <= 0x218F, 0x2C00 <= r && r <= 0x2FEF, 0x3001 <= r && r <= 0xD7FF,
		0xF900 <= r && r <= 0xFDCF, 0xFDF0 <= r && r <= 0xFFFD, 0x10000 <= r && r <= 0xEFFFF:
		return true
	}
	return false
}

func isNameChar(r rune) bool {
	return isNameStartChar(r) || r == '-' || r == '.' || '0' <= r && r <= '9' || r == 0xB7 ||
		0x300 <= r && r <= 0x36F || 0x203F <= r && r <= 0x2040
}
