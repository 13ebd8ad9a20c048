package engine

import (
	"bytes"
	"sort"
	"strings"
)

// DOT writes the plan as Graphviz DOT (spec §12). The output depends only on
// the configuration: same input, byte-identical output.
func (p *Plan) DOT() []byte {
	var b bytes.Buffer
	b.WriteString("digraph datakit {\n  rankdir=LR;\n  node [shape=box];\n")
	for _, phase := range []Phase{PhaseAccess, PhaseResponse} {
		var lines []string
		for _, n := range p.nodes {
			if n.name == nodeVault && n.implicit {
				continue
			}
			if n.phase == phase {
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
	if p.vault >= 0 {
		b.WriteString("  " + dotNode(p.nodes[p.vault]) + "\n")
	}
	type dotEdge struct {
		src, dst int
		sf, df   string
	}
	edges := make([]dotEdge, 0, len(p.edges))
	byName := map[string]int{}
	for _, n := range p.nodes {
		byName[n.name] = n.id
	}
	for _, e := range p.edges {
		edges = append(edges, dotEdge{byName[e.src.name], byName[e.dst.name], e.srcLabel, e.dstLabel})
	}
	sort.SliceStable(edges, func(i, j int) bool {
		a, c := edges[i], edges[j]
		if a.src != c.src {
			return a.src < c.src
		}
		if a.dst != c.dst {
			return a.dst < c.dst
		}
		if a.sf != c.sf {
			return a.sf < c.sf
		}
		return a.df < c.df
	})
	for _, e := range edges {
		b.WriteString("  " + quote(p.nodes[e.src].name) + " -> " + quote(p.nodes[e.dst].name) +
			" [label=" + quote(e.sf+" -> "+e.df) + "];\n")
	}
	for _, br := range p.branches {
		for _, list := range []struct {
			label string
			ids   []int
		}{{"then", br.then}, {"else", br.els}} {
			for _, t := range list.ids {
				b.WriteString("  " + quote(br.name) + " -> " + quote(p.nodes[t].name) +
					" [label=\"" + list.label + "\", style=dashed];\n")
			}
		}
	}
	if p.serviceRequest >= 0 && p.serviceResponse >= 0 {
		b.WriteString("  \"service_request\" -> \"service_response\" [label=\"proxy\", style=dotted];\n")
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func dotNode(n *pnode) string {
	if n.implicit {
		return quote(n.name) + " [label=" + quote(n.name) + ", shape=ellipse, style=dashed];"
	}
	return quote(n.name) + " [label=\"" + escapeDOT(n.name) + `\n` + escapeDOT(n.typ) + "\"];"
}

func quote(s string) string { return `"` + escapeDOT(s) + `"` }

func escapeDOT(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
