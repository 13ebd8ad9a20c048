package admin

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Form decoding limits: a form is a small, flat description of one entity.
const (
	maxFormDepth = 32
	maxFormKeys  = 10000
)

// errFormShape is a form whose keys disagree about a value's shape
// (`a=1&a.b=2`) or exceed the limits.
var errFormShape = errors.New("invalid form")

// decodeForm turns form fields into plain values as Kong reads them (§4.2):
// dotted keys nest (`config.key_names=apikey`); `a[1]=x&a[2]=y`,
// `a[]=x&a[]=y` and `a=x&a=y` make arrays; `headers[x-env]=prod` makes
// maps; a single "" is null. Leaves stay strings: coercing them to the
// schema's booleans and numbers is the caller's job.
func decodeForm(values url.Values) (map[string]any, error) {
	if len(values) > maxFormKeys {
		return nil, fmt.Errorf("%w: more than %d keys", errFormShape, maxFormKeys)
	}
	root := &formNode{}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		path, err := splitFormKey(k)
		if err != nil {
			return nil, err
		}
		if err := root.insert(path, values[k]); err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", errFormShape, k, err)
		}
	}
	if root.kind == formEmpty {
		return map[string]any{}, nil
	}
	m, ok := root.value().(map[string]any)
	if !ok {
		return nil, errFormShape
	}
	return m, nil
}

// formSeg is one step of a form key: a field name, a 1-based position
// ("[2]"), an append ("[]") or a bracketed map key ("[x-env]").
type formSeg struct {
	name   string
	index  int // > 0 for [n]
	append bool
}

// splitFormKey parses `a.b[1][x].c`.
func splitFormKey(k string) ([]formSeg, error) {
	var out []formSeg
	for i := 0; i < len(k); {
		switch k[i] {
		case '[':
			end := strings.IndexByte(k[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("%w: key %q: unclosed [", errFormShape, k)
			}
			inner := k[i+1 : i+end]
			switch n, err := strconv.Atoi(inner); {
			case inner == "":
				out = append(out, formSeg{append: true})
			case err == nil && n > 0 && isDigits(inner):
				out = append(out, formSeg{index: n})
			default:
				out = append(out, formSeg{name: inner})
			}
			i += end + 1
			if i < len(k) && k[i] == '.' {
				i++
			}
		default:
			end := strings.IndexAny(k[i:], ".[")
			if end < 0 {
				end = len(k) - i
			}
			name := k[i : i+end]
			if name == "" {
				return nil, fmt.Errorf("%w: key %q: empty name", errFormShape, k)
			}
			out = append(out, formSeg{name: name})
			i += end
			if i < len(k) && k[i] == '.' {
				i++
				if i == len(k) {
					return nil, fmt.Errorf("%w: key %q: empty name", errFormShape, k)
				}
			}
		}
		if len(out) > maxFormDepth {
			return nil, fmt.Errorf("%w: key %q nests too deep", errFormShape, k)
		}
	}
	if len(out) == 0 || out[0].name == "" {
		return nil, fmt.Errorf("%w: key %q: must start with a name", errFormShape, k)
	}
	return out, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

type formKind int

const (
	formEmpty formKind = iota
	formLeaf
	formMap
	formArray
)

// formNode is a value being assembled from keys.
type formNode struct {
	kind   formKind
	values []string             // formLeaf
	fields map[string]*formNode // formMap
	// formArray: positions given as [n], then appended elements.
	indexed  map[int]*formNode
	appended []*formNode
}

func (n *formNode) become(k formKind) error {
	if n.kind == formEmpty {
		n.kind = k
		return nil
	}
	if n.kind != k {
		return errors.New("conflicting shapes")
	}
	return nil
}

func (n *formNode) insert(path []formSeg, vals []string) error {
	if len(path) == 0 {
		if err := n.become(formLeaf); err != nil {
			return err
		}
		n.values = append(n.values, vals...)
		return nil
	}
	seg := path[0]
	switch {
	case seg.append:
		if err := n.become(formArray); err != nil {
			return err
		}
		if len(path) == 1 {
			for _, v := range vals {
				n.appended = append(n.appended, &formNode{kind: formLeaf, values: []string{v}})
			}
			return nil
		}
		child := &formNode{}
		n.appended = append(n.appended, child)
		return child.insert(path[1:], vals)
	case seg.index > 0:
		if err := n.become(formArray); err != nil {
			return err
		}
		if n.indexed == nil {
			n.indexed = map[int]*formNode{}
		}
		child := n.indexed[seg.index]
		if child == nil {
			child = &formNode{}
			n.indexed[seg.index] = child
		}
		return child.insert(path[1:], vals)
	default:
		if err := n.become(formMap); err != nil {
			return err
		}
		if n.fields == nil {
			n.fields = map[string]*formNode{}
		}
		child := n.fields[seg.name]
		if child == nil {
			child = &formNode{}
			n.fields[seg.name] = child
		}
		return child.insert(path[1:], vals)
	}
}

// value renders the node as plain values.
func (n *formNode) value() any {
	switch n.kind {
	case formLeaf:
		if len(n.values) == 1 {
			if n.values[0] == "" {
				return nil
			}
			return n.values[0]
		}
		out := make([]any, len(n.values))
		for i, v := range n.values {
			out[i] = v
		}
		return out
	case formMap:
		out := make(map[string]any, len(n.fields))
		for k, c := range n.fields {
			out[k] = c.value()
		}
		return out
	case formArray:
		idx := make([]int, 0, len(n.indexed))
		for i := range n.indexed {
			idx = append(idx, i)
		}
		slices.Sort(idx)
		out := make([]any, 0, len(idx)+len(n.appended))
		for _, i := range idx {
			out = append(out, n.indexed[i].value())
		}
		for _, c := range n.appended {
			out = append(out, c.value())
		}
		return out
	}
	return nil
}
