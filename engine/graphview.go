package engine

import "sort"

// EdgeKind says what an edge of a GraphView carries.
type EdgeKind string

// The kinds of edges `datakit graph dot` draws (spec §12).
const (
	EdgeData  EdgeKind = "data"  // a connection, one per field after expansion
	EdgeThen  EdgeKind = "then"  // a branch's then list
	EdgeElse  EdgeKind = "else"  // a branch's else list
	EdgeProxy EdgeKind = "proxy" // service_request to service_response
)

// GraphView is a plan's graph in the order `datakit graph dot` draws it
// (spec §12): DOT and the Admin API's JSON form are both built from it, so
// they cannot disagree.
type GraphView struct {
	// Nodes are the access cluster's nodes, the response cluster's, then
	// the vault.
	Nodes []GraphNode
	// Edges are the data edges by source rank, target rank, source field
	// and target field; then the control edges per branch in nodes order,
	// then before else; then the proxy edge.
	Edges []GraphEdge
}

// GraphNode is one drawn node.
type GraphNode struct {
	Name string
	// Type is the node kind; an implicit node's type is its name.
	Type     string
	Phase    Phase
	Implicit bool
}

// GraphEdge is one drawn edge. SourceField and TargetField are the DOT
// labels' field names ($self for node-wise ends, the full sub-path for
// sub-path sources); empty for control and proxy edges.
type GraphEdge struct {
	Source, SourceField string
	Target, TargetField string
	Kind                EdgeKind
}

// outside reports whether the node is drawn outside the phase clusters.
func (n GraphNode) outside() bool { return n.Name == nodeVault && n.Implicit }

// Graph returns the plan's graph in drawing order. The result is a fresh
// value the caller may keep.
func (p *Plan) Graph() GraphView {
	var v GraphView
	for _, phase := range []Phase{PhaseAccess, PhaseResponse} {
		for _, n := range p.nodes {
			if n.phase == phase && !(n.name == nodeVault && n.implicit) {
				v.Nodes = append(v.Nodes, graphNode(n))
			}
		}
	}
	if p.vault >= 0 {
		v.Nodes = append(v.Nodes, graphNode(p.nodes[p.vault]))
	}

	type dataEdge struct {
		src, dst int
		sf, df   string
	}
	edges := make([]dataEdge, 0, len(p.edges))
	byName := make(map[string]int, len(p.nodes))
	for _, n := range p.nodes {
		byName[n.name] = n.id
	}
	for _, e := range p.edges {
		edges = append(edges, dataEdge{byName[e.src.name], byName[e.dst.name], e.srcLabel, e.dstLabel})
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
	v.Edges = make([]GraphEdge, 0, len(edges)+1)
	for _, e := range edges {
		v.Edges = append(v.Edges, GraphEdge{Source: p.nodes[e.src].name, SourceField: e.sf,
			Target: p.nodes[e.dst].name, TargetField: e.df, Kind: EdgeData})
	}
	for _, br := range p.branches {
		for _, list := range []struct {
			kind EdgeKind
			ids  []int
		}{{EdgeThen, br.then}, {EdgeElse, br.els}} {
			for _, t := range list.ids {
				v.Edges = append(v.Edges, GraphEdge{Source: br.name, Target: p.nodes[t].name, Kind: list.kind})
			}
		}
	}
	if p.serviceRequest >= 0 && p.serviceResponse >= 0 {
		v.Edges = append(v.Edges, GraphEdge{Source: nodeServiceRequest, Target: nodeServiceResponse, Kind: EdgeProxy})
	}
	return v
}

func graphNode(n *pnode) GraphNode {
	return GraphNode{Name: n.name, Type: n.typ, Phase: n.phase, Implicit: n.implicit}
}
