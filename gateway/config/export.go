package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// foreignKeyFields are rendered as id strings in an exported document, the
// declarative reference form.
var foreignKeyFields = []string{"certificate", "client_certificate", "consumer", "route", "service", "upstream"}

// Export renders entities as a "3.0" declarative document (GET /config,
// `datakit config export`): _transform false, every entity top level with
// its id and id references, collections in §5.1 order, entities by id, keys
// sorted, null fields left out. Loading the result gives the same entities.
func Export(e *Entities) ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	root.Content = append(root.Content,
		strNode("_format_version"), &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "3.0", Style: yaml.DoubleQuotedStyle},
		strNode("_transform"), &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"},
	)
	lists := []any{e.Services, e.Routes, e.Consumers, e.Plugins, e.Upstreams, e.Targets,
		e.Certificates, e.SNIs, e.KeyauthCredentials}
	for i, c := range collections {
		items, err := exportItems(c, lists[i])
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			continue
		}
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, it := range items {
			seq.Content = append(seq.Content, valueNode(it))
		}
		root.Content = append(root.Content, strNode(c), seq)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return buf.Bytes(), nil
}

// exportItems turns a slice of entities into plain maps in declarative form,
// sorted by id.
func exportItems(collection string, list any) ([]map[string]any, error) {
	b, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", collection, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keeps integers integers and fractions exact
	var items []map[string]any
	if err := dec.Decode(&items); err != nil {
		return nil, fmt.Errorf("export %s: %w", collection, err)
	}
	for _, it := range items {
		for k, v := range it {
			if v == nil {
				delete(it, k)
				continue
			}
			if m, ok := v.(map[string]any); ok && slices.Contains(foreignKeyFields, k) {
				it[k] = m["id"]
			}
		}
		// SNIs are exported as entities of their own; listing them on the
		// certificate too would declare each twice.
		if collection == "certificates" {
			delete(it, "snis")
		}
	}
	slices.SortFunc(items, func(a, b map[string]any) int {
		x, _ := a["id"].(string)
		y, _ := b["id"].(string)
		return strings.Compare(x, y)
	})
	return items, nil
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

// valueNode builds YAML for plain values with keys sorted, so the output
// never depends on map iteration.
func valueNode(v any) *yaml.Node {
	switch t := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range sortedKeys(t) {
			n.Content = append(n.Content, strNode(k), valueNode(t[k]))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, e := range t {
			n.Content = append(n.Content, valueNode(e))
		}
		return n
	case string:
		return strNode(t)
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(string(t), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: string(t)}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(t)}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
}
