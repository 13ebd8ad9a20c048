package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/datakit-gateway/datakit/engine"
	"io"
	"math"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits bound the work of decoding an untrusted document. Every limit must
// be positive.
type Limits struct {
	// MaxBytes caps the document text.
	MaxBytes int
	// MaxDepth caps the nesting of mappings and sequences.
	MaxDepth int
	// MaxAliasNodes caps the values YAML aliases may add beyond the
	// document's own, which stops "billion laughs" documents.
	MaxAliasNodes int
}

// DefaultLimits returns limits far above any real configuration: 32 MiB of
// text, 1000 levels, 100 000 values through aliases (plus the document's own
// size, so a large file may reuse anchors proportionally).
func DefaultLimits() Limits {
	return Limits{MaxBytes: 32 << 20, MaxDepth: 1000, MaxAliasNodes: 100_000}
}

// ErrDocumentTooLarge reports a document over Limits.MaxBytes; the Admin API
// maps it to 413.
var ErrDocumentTooLarge = errors.New("document too large")

// ParseDocument decodes a YAML or JSON document into plain values: map[string]any,
// []any, string, float64, bool and nil (the shapes encoding/json produces).
// JSON is recognised by parsing as JSON; anything else is YAML (of which JSON
// is nearly a subset). Duplicate keys, several documents, YAML tags other than
// the core ones, merge keys and excessive nesting or aliasing are errors.
func ParseDocument(data []byte, lim Limits) (any, error) {
	if len(data) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrDocumentTooLarge, len(data), lim.MaxBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		return nil, errors.New("invalid UTF-8")
	}
	if json.Valid(data) {
		return parseJSON(data, lim)
	}
	// The YAML parser slows down quadratically on deep nesting: refuse
	// hostile depth before it sees the document.
	if engine.YAMLDepth(data) > lim.MaxDepth {
		return nil, fmt.Errorf("exceeded max depth of %d", lim.MaxDepth)
	}
	return parseYAML(data, lim)
}

// parseJSON walks tokens rather than calling Unmarshal: encoding/json keeps
// the last of duplicate keys silently, and the walk enforces the depth limit.
func parseJSON(data []byte, lim Limits) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := jsonValue(dec, 0, lim)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the document")
	}
	return v, nil
}

func jsonValue(dec *json.Decoder, depth int, lim Limits) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= lim.MaxDepth {
			return nil, fmt.Errorf("exceeded max depth of %d", lim.MaxDepth)
		}
		if t == '[' {
			arr := []any{}
			for dec.More() {
				v, err := jsonValue(dec, depth+1, lim)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token()
			return arr, err
		}
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			if _, dup := obj[k]; dup {
				return nil, fmt.Errorf("duplicate key '%s' (offset %d)", k, dec.InputOffset())
			}
			v, err := jsonValue(dec, depth+1, lim)
			if err != nil {
				return nil, err
			}
			obj[k] = v
		}
		_, err := dec.Token()
		return obj, err
	case json.Number:
		f, err := t.Float64()
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("invalid number %s", t)
		}
		return f, nil
	default: // string, bool, nil
		return t, nil
	}
}

func parseYAML(data []byte, lim Limits) (any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, err
	}
	var more yaml.Node
	if err := dec.Decode(&more); err != io.EOF {
		return nil, errors.New("expected a single document")
	}
	w := yamlWalker{lim: lim, budget: lim.MaxAliasNodes + countNodes(&doc, 0, lim.MaxDepth)}
	return w.value(&doc, 0, false)
}

// countNodes sizes the document without following aliases; the alias budget
// grows with it so large files may reuse anchors proportionally.
func countNodes(n *yaml.Node, depth, maxDepth int) int {
	if depth > maxDepth {
		return 0
	}
	c := 1
	for _, ch := range n.Content {
		c += countNodes(ch, depth+1, maxDepth)
	}
	return c
}

// yamlWalker converts a yaml.Node tree to plain values, expanding aliases
// against a budget: yaml.v3 guards aliasing only when decoding into Go values,
// not for a Node walked by hand.
type yamlWalker struct {
	lim    Limits
	budget int
}

func (w *yamlWalker) value(n *yaml.Node, depth int, aliased bool) (any, error) {
	if depth > w.lim.MaxDepth {
		return nil, fmt.Errorf("exceeded max depth of %d", w.lim.MaxDepth)
	}
	w.budget--
	if aliased && w.budget < 0 {
		return nil, errors.New("document contains excessive aliasing")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return w.value(n.Content[0], depth, aliased)
	case yaml.AliasNode:
		return w.value(n.Alias, depth+1, true)
	case yaml.SequenceNode:
		if n.Tag != "" && n.ShortTag() != "!!seq" {
			return nil, fmt.Errorf("line %d: unsupported tag '%s'", n.Line, n.Tag)
		}
		arr := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := w.value(c, depth+1, aliased)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	case yaml.MappingNode:
		if n.Tag != "" && n.ShortTag() != "!!map" {
			return nil, fmt.Errorf("line %d: unsupported tag '%s'", n.Line, n.Tag)
		}
		obj := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn := n.Content[i]
			if kn.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping keys must be strings", kn.Line)
			}
			if kn.ShortTag() == "!!merge" {
				return nil, fmt.Errorf("line %d: merge keys (<<) are not supported", kn.Line)
			}
			k := kn.Value
			if _, dup := obj[k]; dup {
				return nil, fmt.Errorf("line %d: duplicate key '%s'", kn.Line, k)
			}
			v, err := w.value(n.Content[i+1], depth+1, aliased)
			if err != nil {
				return nil, err
			}
			obj[k] = v
		}
		return obj, nil
	case yaml.ScalarNode:
		return scalar(n)
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// scalar keeps YAML 1.2 core types; timestamps stay strings (Kong files
// carry dates as text) and other tags, !!binary included, are refused.
func scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!str", "!!timestamp":
		return n.Value, nil
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		err := n.Decode(&b)
		return b, err
	case "!!int", "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("line %d: invalid number %s", n.Line, n.Value)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("line %d: invalid number %s", n.Line, n.Value)
		}
		return f, nil
	}
	return nil, fmt.Errorf("line %d: unsupported tag '%s'", n.Line, n.Tag)
}
