package nodes

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/antchfx/xpath"

	"github.com/datakit-gateway/datakit/engine"
)

// Limits of an XML input (spec §5.5, hardening §2.9), enforced while the
// document is read, before any (recursive) conversion.
const (
	xmlMaxDepth    = 256
	xmlMaxElements = 100000
)

// xmlNaming is how attributes and text are named in the JSON form of an XML
// element; xml_to_json and json_to_xml share it.
type xmlNaming struct {
	attrBlock  string // attributes_block_name; "" = attributes directly in the element's object
	attrPrefix string // attributes_name_prefix
	textBlock  string // text_block_name
}

// decodeXMLNaming reads the attributes the two XML node types share.
func decodeXMLNaming(a *engine.Attrs) xmlNaming {
	n := xmlNaming{
		attrBlock:  a.String("attributes_block_name", "", 1, 32),
		attrPrefix: a.String("attributes_name_prefix", "", 1, 32),
		textBlock:  a.String("text_block_name", "#text", 1, 32),
	}
	if !a.Has("attributes_block_name") && !a.Has("attributes_name_prefix") {
		a.Errorf("attributes_block_name", "one of attributes_block_name or attributes_name_prefix is required")
	}
	return n
}

// xmlToJSONKind is the `xml_to_json` node type (spec §7.8).
func xmlToJSONKind() engine.Kind {
	return engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
		d := &engine.Decl{IO: engine.KeyInput | engine.KeyOutput, Input: engine.TypeString, Output: engine.TypeAny}
		n := &xmlToJSONNode{
			naming:        decodeXMLNaming(a),
			textAsProp:    a.Bool("text_as_property", false),
			recognizeType: a.Bool("recognize_type", true),
		}
		if src := a.String("xpath", "", 1, 256); src != "" {
			expr, err := xpath.Compile(src)
			if err != nil {
				a.Errorf("xpath", "invalid XPath expression: %s", err)
			} else {
				n.xpath = &sync.Pool{New: func() any {
					e, _ := xpath.Compile(src) // compiled once above: cannot fail
					return e
				}}
				n.xpath.Put(expr)
			}
		}
		d.Build = func(*engine.BuildInfo) (engine.Node, error) { return n, nil }
		return d
	})
}

// xmlToJSONNode is a configured xml_to_json node; immutable after Build and
// safe for concurrent use.
type xmlToJSONNode struct {
	naming        xmlNaming
	textAsProp    bool
	recognizeType bool
	// xpath holds compiled copies of the expression: xpath.Expr.Evaluate
	// keeps iteration state in the Expr, so each evaluation owns one.
	xpath *sync.Pool
}

var _ engine.Node = (*xmlToJSONNode)(nil)

func (n *xmlToJSONNode) Run(_ context.Context, _ *engine.Env, in []any) ([]any, error) {
	if len(in) == 0 || in[0] == nil {
		return []any{nil}, nil
	}
	s, ok := in[0].(string)
	if !ok {
		return nil, fmt.Errorf("invalid XML: expected string, got %s", engine.JSONType(in[0]))
	}
	v, err := n.convert(s)
	if err != nil {
		return nil, err
	}
	return []any{v}, nil
}

// convert parses the document and converts it (or the elements the xpath
// expression selects) to a JSON value.
func (n *xmlToJSONNode) convert(s string) (any, error) {
	doc, err := parseXML(s)
	if err != nil {
		return nil, fmt.Errorf("invalid XML: %w", err)
	}
	root := doc.children[0]
	if n.xpath == nil {
		return map[string]any{root.name(): n.value(root)}, nil
	}
	expr := n.xpath.Get().(*xpath.Expr)
	defer n.xpath.Put(expr)
	res := expr.Evaluate(&xmlNavigator{cur: doc, attr: -1})
	it, ok := res.(*xpath.NodeIterator)
	if !ok {
		return nil, fmt.Errorf("xpath: expression must select elements, got %s", xpathResultType(res))
	}
	var selected []*xmlNode
	for it.MoveNext() {
		nav, ok := it.Current().(*xmlNavigator)
		if !ok || nav.attr >= 0 {
			continue // attributes are not elements
		}
		e := nav.cur
		if e.kind == xpath.RootNode {
			e = root
		}
		if e.kind != xpath.ElementNode {
			continue // text
		}
		selected = append(selected, e)
	}
	// Unions come in evaluation order: convert in document order, once each.
	slices.SortStableFunc(selected, func(a, b *xmlNode) int { return a.pos - b.pos })
	selected = slices.Compact(selected)
	out := make([]any, len(selected))
	for i, e := range selected {
		out[i] = map[string]any{e.name(): n.value(e)}
	}
	switch len(out) {
	case 0:
		return nil, nil
	case 1:
		return out[0], nil
	}
	return out, nil
}

func xpathResultType(v any) string {
	switch v.(type) {
	case float64:
		return "number"
	case string:
		return "string"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// value converts element e (spec §7.8). Recursion is bounded by
// xmlMaxDepth, checked while parsing.
func (n *xmlToJSONNode) value(e *xmlNode) any {
	text := strings.TrimSpace(e.text())
	hasChild := false
	for _, c := range e.children {
		if c.kind == xpath.ElementNode {
			hasChild = true
			break
		}
	}
	if len(e.attrs) == 0 && !hasChild {
		switch {
		case text == "":
			return map[string]any{}
		case n.textAsProp:
			return map[string]any{n.naming.textBlock: n.scalar(text)}
		}
		return n.scalar(text)
	}
	obj := make(map[string]any, len(e.attrs)+len(e.children)+1)
	if len(e.attrs) > 0 {
		attrs := obj
		if n.naming.attrBlock != "" {
			attrs = make(map[string]any, len(e.attrs))
			obj[n.naming.attrBlock] = attrs
		}
		for _, a := range e.attrs {
			attrs[n.naming.attrPrefix+qualifiedName(a.Name)] = n.scalar(a.Value)
		}
	}
	if text != "" {
		obj[n.naming.textBlock] = n.scalar(text)
	}
	// Children last: a child wins over an attribute or text of the same key.
	isArray := map[string]bool{}
	for _, c := range e.children {
		if c.kind != xpath.ElementNode {
			continue
		}
		name, v := c.name(), n.value(c)
		arr, repeated := isArray[name]
		switch {
		case !repeated:
			obj[name] = v
			isArray[name] = false
		case !arr:
			obj[name] = []any{obj[name], v}
			isArray[name] = true
		default:
			obj[name] = append(obj[name].([]any), v)
		}
	}
	return obj
}

// scalar applies recognize_type to a text or attribute value.
func (n *xmlToJSONNode) scalar(s string) any {
	if !n.recognizeType {
		return s
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if s == "" || s != strings.TrimSpace(s) {
		return s
	}
	if v, ok := engine.ParseNumber(s); ok {
		if f, isFloat := v.(float64); isFloat && (math.IsInf(f, 0) || math.IsNaN(f)) {
			return s // 1e400: no JSON number can hold it
		}
		return v
	}
	return s
}

// xmlNode is a node of a parsed document: the document itself, an element or
// a run of text. Comments, processing instructions and DTDs are dropped.
type xmlNode struct {
	kind     xpath.NodeType
	space    string // namespace prefix as written
	local    string
	attrs    []xml.Attr // names keep their prefixes
	data     string     // text nodes
	parent   *xmlNode
	index    int // position in parent.children
	pos      int // position in document order
	children []*xmlNode
}

// name is the element name as written (`soap:Body`).
func (e *xmlNode) name() string { return qualifiedName(xml.Name{Space: e.space, Local: e.local}) }

func qualifiedName(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// text is the concatenation of e's own text children.
func (e *xmlNode) text() string {
	var b strings.Builder
	for _, c := range e.children {
		if c.kind == xpath.TextNode {
			b.WriteString(c.data)
		}
	}
	return b.String()
}

// stringValue is the XPath string value: all descendant text.
func (e *xmlNode) stringValue() string {
	if e.kind == xpath.TextNode {
		return e.data
	}
	var b strings.Builder
	var walk func(*xmlNode)
	walk = func(x *xmlNode) {
		for _, c := range x.children {
			if c.kind == xpath.TextNode {
				b.WriteString(c.data)
			} else {
				walk(c)
			}
		}
	}
	walk(e)
	return b.String()
}

var (
	errXMLDepth    = fmt.Errorf("nesting exceeds %d levels", xmlMaxDepth)
	errXMLElements = fmt.Errorf("more than %d elements", xmlMaxElements)
	errXMLNoRoot   = errors.New("no root element")
)

// newXMLDecoder is strict and knows no entities but the predefined and
// numeric ones: a DTD is a Directive token that is skipped, so its entities
// are never expanded (a reference to one is a syntax error).
func newXMLDecoder(s string) *xml.Decoder {
	dec := xml.NewDecoder(strings.NewReader(s))
	dec.Strict = true
	dec.Entity = nil
	return dec
}

// xmlLimits counts the elements and the nesting of a token stream against
// the limits of hardening §2.9.
type xmlLimits struct{ depth, elements int }

func (l *xmlLimits) start() error {
	if l.depth++; l.depth > xmlMaxDepth {
		return errXMLDepth
	}
	if l.elements++; l.elements > xmlMaxElements {
		return errXMLElements
	}
	return nil
}

func (l *xmlLimits) end() { l.depth-- }

// xmlPreScanBytes is the size from which a document could hold more
// elements than the limit (each takes at least 4 bytes: "<a/>").
const xmlPreScanBytes = 4 * xmlMaxElements

// preScanXML checks the limits on the token stream alone, before anything is
// built: a huge hostile document costs reading it (about a fifth of building
// its tree). Syntax errors are left to parseXML, which reports them with
// their line.
func preScanXML(s string) error {
	dec := newXMLDecoder(s)
	var l xmlLimits
	for {
		tok, err := dec.RawToken()
		if err != nil {
			return nil
		}
		switch tok.(type) {
		case xml.StartElement:
			if err := l.start(); err != nil {
				return err
			}
		case xml.EndElement:
			l.end()
		}
	}
}

// parseXML reads s into a tree with the token stream of encoding/xml, in one
// iterative pass that enforces the limits (after preScanXML for documents
// large enough to break them): nothing recursive touches the document
// before. RawToken keeps namespace prefixes as written; the element nesting
// is checked here instead.
func parseXML(s string) (*xmlNode, error) {
	if len(s) > xmlPreScanBytes {
		if err := preScanXML(s); err != nil {
			return nil, err
		}
	}
	dec := newXMLDecoder(s)
	doc := &xmlNode{kind: xpath.RootNode}
	cur := doc
	var l xmlLimits
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if l.depth == 0 && len(doc.children) > 0 {
				return nil, errors.New("more than one root element")
			}
			if err := l.start(); err != nil {
				return nil, err
			}
			e := &xmlNode{kind: xpath.ElementNode, space: t.Name.Space, local: t.Name.Local, parent: cur, pos: l.elements}
			if len(t.Attr) > 0 {
				e.attrs = make([]xml.Attr, len(t.Attr))
				copy(e.attrs, t.Attr) // RawToken's strings are already copies
			}
			cur.append(e)
			cur = e
		case xml.EndElement:
			if l.depth == 0 || t.Name.Space != cur.space || t.Name.Local != cur.local {
				return nil, fmt.Errorf("line %d: unexpected end element </%s>", lineOf(dec, s), qualifiedName(t.Name))
			}
			l.end()
			cur = cur.parent
		case xml.CharData:
			if l.depth == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, fmt.Errorf("line %d: text outside the root element", lineOf(dec, s))
				}
				continue
			}
			if last := len(cur.children) - 1; last >= 0 && cur.children[last].kind == xpath.TextNode {
				cur.children[last].data += string(t) // text around a comment or CDATA is one node
				continue
			}
			cur.append(&xmlNode{kind: xpath.TextNode, data: string(t), parent: cur})
		}
		// Comments, processing instructions and directives (DTDs) are ignored.
	}
	if l.depth > 0 {
		return nil, fmt.Errorf("unexpected EOF: element <%s> not closed", cur.name())
	}
	if len(doc.children) == 0 {
		return nil, errXMLNoRoot
	}
	return doc, nil
}

func (e *xmlNode) append(c *xmlNode) {
	c.index = len(e.children)
	e.children = append(e.children, c)
}

// lineOf is the line of the decoder's current offset.
func lineOf(dec *xml.Decoder, s string) int {
	off := int(dec.InputOffset())
	if off > len(s) {
		off = len(s)
	}
	return 1 + strings.Count(s[:off], "\n")
}

// xmlNavigator walks a parsed document for antchfx/xpath. attr >= 0 means
// it is on that attribute of cur.
type xmlNavigator struct {
	cur  *xmlNode
	attr int
}

var _ xpath.NodeNavigator = (*xmlNavigator)(nil)

func (x *xmlNavigator) NodeType() xpath.NodeType {
	if x.attr >= 0 {
		return xpath.AttributeNode
	}
	return x.cur.kind
}

func (x *xmlNavigator) LocalName() string {
	if x.attr >= 0 {
		return x.cur.attrs[x.attr].Name.Local
	}
	return x.cur.local
}

func (x *xmlNavigator) Prefix() string {
	if x.attr >= 0 {
		return x.cur.attrs[x.attr].Name.Space
	}
	return x.cur.space
}

func (x *xmlNavigator) Value() string {
	if x.attr >= 0 {
		return x.cur.attrs[x.attr].Value
	}
	return x.cur.stringValue()
}

func (x *xmlNavigator) Copy() xpath.NodeNavigator { c := *x; return &c }

func (x *xmlNavigator) MoveToRoot() {
	for x.cur.parent != nil {
		x.cur = x.cur.parent
	}
	x.attr = -1
}

func (x *xmlNavigator) MoveToParent() bool {
	if x.attr >= 0 {
		x.attr = -1
		return true
	}
	if x.cur.parent == nil {
		return false
	}
	x.cur = x.cur.parent
	return true
}

func (x *xmlNavigator) MoveToNextAttribute() bool {
	if x.attr+1 >= len(x.cur.attrs) {
		return false
	}
	x.attr++
	return true
}

func (x *xmlNavigator) MoveToChild() bool {
	if x.attr >= 0 || len(x.cur.children) == 0 {
		return false
	}
	x.cur = x.cur.children[0]
	return true
}

func (x *xmlNavigator) MoveToFirst() bool {
	if x.attr >= 0 || x.cur.parent == nil || x.cur.index == 0 {
		return false
	}
	x.cur = x.cur.parent.children[0]
	return true
}

func (x *xmlNavigator) MoveToNext() bool {
	if x.attr >= 0 || x.cur.parent == nil || x.cur.index+1 >= len(x.cur.parent.children) {
		return false
	}
	x.cur = x.cur.parent.children[x.cur.index+1]
	return true
}

func (x *xmlNavigator) MoveToPrevious() bool {
	if x.attr >= 0 || x.cur.parent == nil || x.cur.index == 0 {
		return false
	}
	x.cur = x.cur.parent.children[x.cur.index-1]
	return true
}

func (x *xmlNavigator) MoveTo(other xpath.NodeNavigator) bool {
	o, ok := other.(*xmlNavigator)
	if !ok {
		return false
	}
	*x = *o
	return true
}
