package engine

import "sort"

// Phase is the part of a plan a node runs in.
type Phase uint8

// The two parts of a plan (spec §4.2).
const (
	PhaseAccess Phase = iota
	PhaseResponse
)

func (p Phase) String() string {
	if p == PhaseResponse {
		return "response"
	}
	return "access"
}

// Plan is a compiled configuration. It is immutable and safe for concurrent
// use: every request runs it with its own Run.
type Plan struct {
	debug bool
	opts  Options
	// nodes are ordered by rank (request, vault, service_response, declared
	// nodes in order, service_request, response); a node's id is its
	// position. Nodes that become runnable together start in this order.
	nodes []*pnode
	// traceOrder lists node ids in trace order: declared, then implicit.
	traceOrder []int
	edges      []*edge
	branches   []*pnode
	// ids of the implicit nodes, -1 when unused.
	request, serviceRequest, serviceResponse, response, vault int
	// totalInputs sizes one per-run slice holding every node's inputs.
	totalInputs int
	// asyncIn counts the async nodes of each part: sizes result channels.
	asyncIn [2]int
	// requestFields and responseFields are the fields of request and
	// service_response the plan reads.
	requestFields, responseFields, vaultFields []int
	// vaultRefs are the vault node's references in output order.
	vaultRefs          []vaultRef
	hasResponsePart    bool
	readsResponseBody  bool
	readsRequestBody   bool
	writesResponseBody bool
}

// pnode is a node of a compiled plan.
type pnode struct {
	id        int
	name, typ string
	index     int // 0-based position in nodes; -1 for implicit nodes
	implicit  bool
	decl      *Decl
	node      Node
	phase     Phase
	inFields  []Field
	inTypes   []string // content types of strings straight from the sources
	inOffset  int      // position of this node's inputs in the run's slice
	ins       []inEdge // sorted by target field
	deps      int      // distinct source nodes plus listing branches
	// dependents are the distinct nodes with a data edge from this node.
	dependents []int
	// then and else are a branch's listed node ids.
	then, els []int
	isBranch  bool
	async     bool
	connected bool // some connection feeds the node
}

// inEdge delivers one input field of a node at runtime.
type inEdge struct {
	src      int
	srcField int // -1: node-wise
	path     []string
	pick     string
	field    int // index into the target's inFields
	typ      Type
	srcRef   string
}

// Debug reports whether the configuration has `debug: true`.
func (p *Plan) Debug() bool { return p.debug }

// HasResponsePart reports whether the plan has work to do after proxying:
// response-part nodes or changes to the client response.
func (p *Plan) HasResponsePart() bool { return p.hasResponsePart }

// ReadsRequestBody reports whether the plan reads the client body.
func (p *Plan) ReadsRequestBody() bool { return p.readsRequestBody }

// NeedsResponseBody reports whether the upstream body must be buffered before
// the response part runs (spec §4.3).
func (p *Plan) NeedsResponseBody() bool { return p.readsResponseBody || p.writesResponseBody }

func (d *decoder) buildPlan(edges []*edge, dg *depGraph, resp map[*declNode]bool, opts Options) (*Plan, error) {
	p := &Plan{debug: d.debug, opts: opts, edges: edges, vaultRefs: make([]vaultRef, len(d.vault)),
		request: -1, serviceRequest: -1, serviceResponse: -1, response: -1, vault: -1}
	for i, name := range d.vault {
		p.vaultRefs[i] = d.vaultRefs[name]
	}
	ordered := append([]*declNode(nil), dg.nodes...)
	sort.SliceStable(ordered, func(i, j int) bool { return d.rankOf(ordered[i].name) < d.rankOf(ordered[j].name) })
	ids := map[*declNode]int{}
	for i, n := range ordered {
		ids[n] = i
		pn := &pnode{id: i, name: n.name, typ: n.typ, index: n.index, implicit: n.implicit, decl: n.decl}
		if resp[n] {
			pn.phase = PhaseResponse
		}
		// A branch may list nothing (then and else are optional); it is the
		// one declared kind without Build, since the scheduler runs it.
		pn.isBranch = n.decl.Then != nil || n.decl.Else != nil || (!n.implicit && n.decl.Build == nil)
		pn.async = n.decl.Async
		p.nodes = append(p.nodes, pn)
		switch n.name {
		case nodeRequest:
			p.request = i
		case nodeServiceRequest:
			p.serviceRequest = i
		case nodeServiceResponse:
			p.serviceResponse = i
		case nodeResponse:
			p.response = i
		case nodeVault:
			p.vault = i
		}
	}
	for _, n := range ordered {
		if !n.implicit {
			p.traceOrder = append(p.traceOrder, ids[n])
		}
	}
	for _, name := range []string{nodeRequest, nodeServiceRequest, nodeServiceResponse, nodeResponse, nodeVault} {
		if n, ok := d.byName[name]; ok && n.implicit {
			if id, used := ids[n]; used {
				p.traceOrder = append(p.traceOrder, id)
			}
		}
	}

	// Input fields: fixed inputs, or user-defined ones in byte order, or a
	// single node-wise field.
	user := map[*declNode]map[string]bool{}
	self := map[*declNode]bool{}
	for _, e := range edges {
		if e.dst.decl.UserInputs && e.dstField != SelfField {
			if user[e.dst] == nil {
				user[e.dst] = map[string]bool{}
			}
			user[e.dst][e.dstField] = true
		} else if e.dstField == SelfField {
			self[e.dst] = true
		}
	}
	for _, n := range ordered {
		pn := p.nodes[ids[n]]
		switch {
		case len(n.decl.Inputs) > 0:
			pn.inFields = n.decl.Inputs
		case user[n] != nil:
			for _, f := range SortedKeys(user[n]) {
				pn.inFields = append(pn.inFields, Field{f, TypeAny})
			}
		case self[n] || n.decl.Input != TypeNone:
			pn.inFields = []Field{{SelfField, n.decl.Input}}
		}
		pn.inTypes = make([]string, len(pn.inFields))
		pn.inOffset = p.totalInputs
		p.totalInputs += len(pn.inFields)
	}

	srcSeen := map[[2]int]bool{}
	for _, e := range edges {
		src, dst := p.nodes[ids[e.src]], p.nodes[ids[e.dst]]
		field := fieldIndex(dst.inFields, e.dstField)
		dst.ins = append(dst.ins, inEdge{src: src.id, srcField: e.srcField, path: e.path, pick: e.pick,
			field: field, typ: e.dstType, srcRef: e.srcRef})
		dst.connected = true
		if e.srcField >= 0 || len(src.decl.Outputs) == 0 {
			if len(e.path) == 0 && e.pick == "" && e.srcType == TypeString {
				dst.inTypes[field] = src.decl.OutputContentType
			}
		}
		if !srcSeen[[2]int{src.id, dst.id}] {
			srcSeen[[2]int{src.id, dst.id}] = true
			src.dependents = append(src.dependents, dst.id)
			dst.deps++
		}
		p.noteReads(e, src, dst)
	}
	for _, pn := range p.nodes {
		sort.SliceStable(pn.ins, func(i, j int) bool { return pn.ins[i].field < pn.ins[j].field })
		if pn.isBranch {
			p.branches = append(p.branches, pn)
			for _, name := range pn.decl.Then {
				t := p.nodes[ids[d.byName[name]]]
				pn.then = append(pn.then, t.id)
				t.deps++
			}
			for _, name := range pn.decl.Else {
				t := p.nodes[ids[d.byName[name]]]
				pn.els = append(pn.els, t.id)
				t.deps++
			}
		}
		if pn.phase == PhaseResponse && !pn.implicit {
			p.hasResponsePart = true
		}
		if pn.async {
			p.asyncIn[pn.phase]++
		}
	}
	if p.response >= 0 {
		p.hasResponsePart = true
	}

	for _, pn := range p.nodes {
		if pn.implicit || pn.isBranch || pn.decl.Build == nil {
			continue
		}
		connected := map[string]bool{}
		for _, in := range pn.ins {
			connected[pn.inFields[in.field].Name] = true
		}
		node, err := pn.decl.Build(&BuildInfo{
			Name: pn.name, Index: pn.index, InputConnected: pn.connected, Connected: connected,
			InputFields: pn.inFields, InputContentTypes: pn.inTypes,
			PluginID: opts.PluginID, Resources: d.res, Recorder: opts.Recorder,
		})
		if err != nil {
			d.errorf("%s: %v", d.nodes[pn.index].loc, err)
			continue
		}
		pn.node = node
	}
	if len(d.errs) > 0 {
		msgs := make([]string, len(d.errs))
		for i, e := range d.errs {
			msgs[i] = e.Error()
		}
		return nil, &ConfigError{Messages: msgs}
	}
	return p, nil
}

// noteReads records which request and upstream-response fields the plan
// reads, and whether it writes the client response body.
func (p *Plan) noteReads(e *edge, src, dst *pnode) {
	add := func(list *[]int, decl *Decl) {
		if e.srcField >= 0 {
			*list = appendUnique(*list, e.srcField)
			return
		}
		for i := range decl.Outputs {
			*list = appendUnique(*list, i)
		}
	}
	switch src.name {
	case nodeRequest:
		if src.implicit {
			add(&p.requestFields, src.decl)
		}
	case nodeServiceResponse:
		if src.implicit {
			add(&p.responseFields, src.decl)
		}
	case nodeVault:
		if src.implicit {
			add(&p.vaultFields, src.decl)
		}
	}
	if dst.implicit && dst.name == nodeResponse && dst.inFields[fieldIndex(dst.inFields, e.dstField)].Name == "body" {
		p.writesResponseBody = true
	}
	for _, f := range p.requestFields {
		if implicitDecls[nodeRequest].Outputs[f].Name == "body" {
			p.readsRequestBody = true
		}
	}
	for _, f := range p.responseFields {
		if name := implicitDecls[nodeServiceResponse].Outputs[f].Name; name == "body" || name == "raw_body" {
			p.readsResponseBody = true
		}
	}
	sort.Ints(p.requestFields)
	sort.Ints(p.responseFields)
	sort.Ints(p.vaultFields)
}

func appendUnique(list []int, v int) []int {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}
