package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Limits on configuration documents: hostile input (alias bombs, deep nesting,
// huge files) must get a clear error in bounded time and memory.
const (
	maxDocumentBytes = 8 << 20
	maxDocumentNodes = 1 << 20 // values visited, aliases expanded included
	maxDocumentDepth = 512
)

// ParseDocument decodes a YAML or JSON document into runtime values (objects
// as map[string]any, integers as int). Errors are `syntax error: …`.
func ParseDocument(data []byte) (any, error) {
	if len(data) > maxDocumentBytes {
		return nil, fmt.Errorf("syntax error: document exceeds %d bytes", maxDocumentBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		v, err := DecodeJSON(trimmed)
		if err == nil {
			return v, nil
		}
		// Flow-style YAML also starts with a brace; fall through to YAML and
		// report the JSON error only if YAML fails too.
		if yv, yerr := parseYAML(data); yerr == nil {
			return yv, nil
		}
		return nil, fmt.Errorf("syntax error: %v", err)
	}
	v, err := parseYAML(data)
	if err != nil {
		return nil, fmt.Errorf("syntax error: %v", err)
	}
	return v, nil
}

// YAMLDepth estimates a YAML document's nesting from indentation, sequence
// markers and flow brackets, without parsing it: the YAML parser itself
// slows down quadratically on deep nesting, so hostile depth is refused
// first. It over-estimates rather than under-estimates (quoted brackets
// count), which only matters far beyond any real configuration.
func YAMLDepth(data []byte) int {
	var indents []int
	maxDepth, flow := 0, 0
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		rest := line[indent:]
		if len(rest) == 0 || rest[0] == '#' {
			continue
		}
		for len(indents) > 0 && indents[len(indents)-1] >= indent {
			indents = indents[:len(indents)-1]
		}
		indents = append(indents, indent)
		depth := len(indents)
		// Each "- " opens one more level on the same line.
		for len(rest) >= 2 && rest[0] == '-' && rest[1] == ' ' {
			depth++
			rest = bytes.TrimLeft(rest[2:], " ")
		}
		for _, c := range rest {
			switch c {
			case '[', '{':
				flow++
			case ']', '}':
				flow--
			}
			maxDepth = max(maxDepth, depth+flow)
		}
		maxDepth = max(maxDepth, depth+flow)
	}
	return maxDepth
}

func parseYAML(data []byte) (any, error) {
	if d := YAMLDepth(data); d > maxDocumentDepth {
		return nil, fmt.Errorf("nesting exceeds %d levels", maxDocumentDepth)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 {
		return nil, nil
	}
	w := yamlWalker{budget: maxDocumentNodes}
	return w.value(&doc, 0)
}

// yamlWalker converts a yaml.Node tree, expanding aliases within a budget.
type yamlWalker struct{ budget int }

var errTooLarge = errors.New("document too large (too many values or aliases)")

func (w *yamlWalker) value(n *yaml.Node, depth int) (any, error) {
	w.budget--
	if w.budget < 0 {
		return nil, errTooLarge
	}
	if depth > maxDocumentDepth {
		return nil, fmt.Errorf("nesting exceeds %d levels", maxDocumentDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return w.value(n.Content[0], depth)
	case yaml.AliasNode:
		return w.value(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := w.value(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.AliasNode {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping keys must be scalars", k.Line)
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("line %d: mapping key %q already defined", k.Line, k.Value)
			}
			v, err := w.value(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	case yaml.ScalarNode:
		return scalar(n)
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

func scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, err
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return int(i), nil
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, err
		}
		return f, nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, err
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("line %d: %s is not a JSON number", n.Line, strconv.Quote(n.Value))
		}
		return f, nil
	}
	return n.Value, nil
}
