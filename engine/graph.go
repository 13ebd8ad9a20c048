package engine

import (
	"sort"

	"github.com/dominikbraun/graph"
)

// depEdge is an edge of the dependency graph: a data edge, a branch's control
// edge (then/else entry k), or the proxy edge.
type depEdge struct {
	from, to *declNode
	data     *edge
	branch   string // "then" or "else" for control edges
	k        int
}

// depGraph is the dependency graph over declared and implicit nodes.
type depGraph struct {
	nodes []*declNode // declared valid nodes in order, then implicit in use
	out   map[*declNode][]depEdge
	g     graph.Graph[string, string]
}

func (d *decoder) buildDepGraph(edges []*edge) *depGraph {
	dg := &depGraph{out: map[*declNode][]depEdge{}, g: graph.New(graph.StringHash, graph.Directed())}
	add := func(n *declNode) {
		if _, err := dg.g.Vertex(n.name); err != nil {
			_ = dg.g.AddVertex(n.name)
			dg.nodes = append(dg.nodes, n)
		}
	}
	for _, n := range d.nodes {
		if n.valid {
			add(n)
		}
	}
	link := func(e depEdge) {
		add(e.from)
		add(e.to)
		dg.out[e.from] = append(dg.out[e.from], e)
		_ = dg.g.AddEdge(e.from.name, e.to.name) // duplicates are expected
	}
	for _, e := range edges {
		link(depEdge{from: e.src, to: e.dst, data: e})
	}
	for _, n := range d.nodes {
		if !n.valid {
			continue
		}
		// A branch listing itself is an attribute error, not a cycle.
		for k, name := range n.decl.Then {
			if t := d.lookup(name); t != nil && !t.implicit && t != n {
				link(depEdge{from: n, to: t, branch: "then", k: k})
			}
		}
		for k, name := range n.decl.Else {
			if t := d.lookup(name); t != nil && !t.implicit && t != n {
				link(depEdge{from: n, to: t, branch: "else", k: k})
			}
		}
	}
	sreq, sresp := d.byName[nodeServiceRequest], d.byName[nodeServiceResponse]
	if sreq != nil && sresp != nil {
		link(depEdge{from: sreq, to: sresp})
	}
	return dg
}

// checkCycles reports one error per strongly connected component: a shortest
// cycle through its lowest-index declared node (spec §11). Components that
// contain the proxy edge are reported by checkPhases instead.
func (d *decoder) checkCycles(dg *depGraph) bool {
	sccs, err := graph.StronglyConnectedComponents(dg.g)
	if err != nil {
		d.errorf("nodes: %v", err)
		return false
	}
	rank := map[string]int{}
	for i, n := range dg.nodes {
		rank[n.name] = i
	}
	type cycle struct {
		start *declNode
		path  []*declNode
		close depEdge
	}
	var cycles []cycle
	for _, comp := range sccs {
		if len(comp) < 2 {
			continue
		}
		in := map[string]bool{}
		for _, name := range comp {
			in[name] = true
		}
		if in[nodeServiceRequest] && in[nodeServiceResponse] {
			continue
		}
		sort.Slice(comp, func(i, j int) bool { return rank[comp[i]] < rank[comp[j]] })
		start := dg.nodes[rank[comp[0]]]
		path, closing := dg.shortestCycle(start, in)
		cycles = append(cycles, cycle{start, path, closing})
	}
	sort.Slice(cycles, func(i, j int) bool { return rank[cycles[i].start.name] < rank[cycles[j].start.name] })
	for _, c := range cycles {
		names := ""
		for _, n := range c.path {
			names += n.name + " -> "
		}
		names += c.start.name
		e := c.close
		if e.data != nil {
			d.errorf("%s: %s: invalid dependency (%q -> %q): circular dependency: %s",
				d.nodes[e.data.conn.owner].loc, e.data.conn.at, e.data.srcRef, e.data.dstRef, names)
		} else {
			d.errorf("%s: %s[%d]: invalid dependency (%q -> %q): circular dependency: %s",
				e.from.loc, e.branch, e.k, e.from.name, e.to.name, names)
		}
	}
	return len(cycles) == 0
}

// shortestCycle finds, by breadth-first search in edge order, a shortest path
// from start back to start within the component, and the edge closing it.
func (dg *depGraph) shortestCycle(start *declNode, in map[string]bool) ([]*declNode, depEdge) {
	prev := map[*declNode]depEdge{}
	queue := []*declNode{start}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, e := range dg.out[n] {
			if !in[e.to.name] {
				continue
			}
			if e.to == start {
				var path []*declNode
				for at := n; at != start; at = prev[at].from {
					path = append([]*declNode{at}, path...)
				}
				return append([]*declNode{start}, path...), e
			}
			if _, seen := prev[e.to]; !seen {
				prev[e.to] = e
				queue = append(queue, e.to)
			}
		}
	}
	return []*declNode{start}, depEdge{from: start, to: start}
}

// assignPhases places nodes in the access or response part (spec §4.2) and
// reports the phase errors. The response part is what service_response,
// response and response-only nodes reach, never crossing into
// service_request: a search rather than a topological order, because a
// response-part node feeding service_request closes a cycle through the proxy
// edge, which is exactly the error reported here.
func (d *decoder) assignPhases(dg *depGraph, modes map[*declNode]ModeRules) map[*declNode]bool {
	resp := map[*declNode]bool{}
	var queue []*declNode
	for _, n := range dg.nodes {
		if n.name == nodeServiceResponse || n.name == nodeResponse || modes[n].ResponseOnly {
			resp[n] = true
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, e := range dg.out[n] {
			if e.to.name != nodeServiceRequest && !resp[e.to] {
				resp[e.to] = true
				queue = append(queue, e.to)
			}
		}
	}
	for _, n := range d.nodes {
		for _, e := range dg.out[n] {
			if resp[n] && e.to.name == nodeServiceRequest && e.data != nil {
				d.errorf("%s: %s: invalid dependency (%q -> %q): %q depends on service_response and runs after proxying",
					d.nodes[e.data.conn.owner].loc, e.data.conn.at, e.data.srcRef, e.data.dstRef, n.name)
			}
		}
		if resp[n] && modes[n].AccessOnly {
			d.errorf("%s: %s: %s %q can only be set before proxying, but this node depends on service_response",
				n.loc, n.decl.ModeField, n.decl.ModeField, n.modeSubject)
		}
	}
	return resp
}

// rankOf orders nodes for scheduling ties and DOT edges: request, vault,
// service_response, declared nodes in order, service_request, response.
func (d *decoder) rankOf(name string) int {
	switch name {
	case nodeRequest:
		return -3
	case nodeVault:
		return -2
	case nodeServiceResponse:
		return -1
	case nodeServiceRequest:
		return MaxNodes + 1
	case nodeResponse:
		return MaxNodes + 2
	}
	return d.byName[name].index
}
