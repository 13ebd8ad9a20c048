package engine

import (
	"bytes"
	"strings"
)

// DOT writes the plan as Graphviz DOT (spec §12). The output depends only on
// the configuration: same input, byte-identical output. It draws Graph().
func (p *Plan) DOT() []byte {
	v := p.Graph()
	var b bytes.Buffer
	b.WriteString("digraph datakit {\n  rankdir=LR;\n  node [shape=box];\n")
	for _, phase := range []Phase{PhaseAccess, PhaseResponse} {
		var lines []string
		for _, n := range v.Nodes {
			if n.Phase == phase && !n.outside() {
				lines = append(lines, "    "+dotNode(n))
			}
		}
		if len(lines) == 0 {
			continue
		}
		b.WriteString("  subgraph cluster_" + phase.String() + " {\n    label=\"" + phase.String() + "\";\n")
		b.WriteString(strings.Join(lines, "\n"))
		b.WriteString("\n  }\n")
	}
	for _, n := range v.Nodes {
		if n.outside() {
			b.WriteString("  " + dotNode(n) + "\n")
		}
	}
	for _, e := range v.Edges {
		b.WriteString("  " + quote(e.Source) + " -> " + quote(e.Target))
		switch e.Kind {
		case EdgeData:
			b.WriteString(" [label=" + quote(e.SourceField+" -> "+e.TargetField) + "];\n")
		case EdgeProxy:
			b.WriteString(" [label=\"proxy\", style=dotted];\n")
		default:
			b.WriteString(" [label=\"" + string(e.Kind) + "\", style=dashed];\n")
		}
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func dotNode(n GraphNode) string {
	if n.Implicit {
		return quote(n.Name) + " [label=" + quote(n.Name) + ", shape=ellipse, style=dashed];"
	}
	return quote(n.Name) + " [label=\"" + escapeDOT(n.Name) + `\n` + escapeDOT(n.Type) + "\"];"
}

func quote(s string) string { return `"` + escapeDOT(s) + `"` }

func escapeDOT(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
