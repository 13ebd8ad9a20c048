package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"runtime/debug"
	"time"
)

// NodeError is a plan failure: the node that failed first and why.
type NodeError struct {
	Name, Type string
	// Index is the node's 1-based position in nodes (as Kong reports it);
	// 0 for implicit nodes.
	Index int
	Err   error
}

func (e *NodeError) Error() string { return fmt.Sprintf("%s %q: %v", e.Type, e.Name, e.Err) }
func (e *NodeError) Unwrap() error { return e.Err }

// errInternal replaces a node's panic in what clients and traces see.
var errInternal = errors.New("internal error")

// Outcome is how one part of a plan ended.
type Outcome struct {
	// Exit is the response of the exit node that won, or nil.
	Exit *Response
	// Err is the plan's failure, or nil.
	Err *NodeError
	// Abort is an error of the Exchange itself (client body too large or
	// invalid, client gone): a gateway error rather than a node failure.
	Abort error
}

// RunOptions configure one run of a plan.
type RunOptions struct {
	RequestID string
	// Logger carries the request's attributes; nil discards.
	Logger *slog.Logger
	// Trace records a debug trace (spec §10).
	Trace bool
	// Clock returns the current time for traces; nil uses time.Now.
	Clock func() time.Time
	// Ordered handles async results in dispatch order rather than arrival
	// order, so offline runs against instant mocks print the same trace
	// every time. Requests never set it: it delays ready work.
	Ordered bool
}

type nodeStatus uint8

const (
	statusPending nodeStatus = iota
	statusRunning
	statusComplete
	statusError
	statusCanceled
	statusSkipped
)

// nodeRun is the per-request state of one node.
type nodeRun struct {
	status    nodeStatus
	doomed    bool // a source was skipped or a branch did not select it
	remaining int  // sources and branches not yet done
	outs      []any
	self      map[string]any // node-wise object of named outputs, built on demand
	startedAt time.Time
	err       error
}

// Run is the state of one request's execution of a plan. Its methods are
// called from one goroutine: Access, then (if proxied) Response, then Trace.
type Run struct {
	plan     *Plan
	env      Env
	ex       Exchange
	nodes    []nodeRun
	ins      []any
	exit     *Response
	exitNode int
	arrivals arrivals
	current  int // the node running inline, for exits
	// secrets are the vault values this request resolved.
	secrets []string
	failure *NodeError
	abort   error
	trace   *tracer
}

// NewRun prepares a run of the plan against one request.
func (p *Plan) NewRun(ex Exchange, o RunOptions) *Run {
	r := &Run{plan: p, ex: ex, nodes: make([]nodeRun, len(p.nodes)), ins: make([]any, p.totalInputs), exitNode: -1}
	logger := o.Logger
	if logger == nil {
		logger = discardLogger
	}
	r.env = Env{Exchange: ex, RequestID: o.RequestID, Logger: logger, exit: r}
	r.arrivals.ordered = o.Ordered
	for i, n := range p.nodes {
		r.nodes[i].remaining = n.deps
	}
	if o.Trace {
		r.trace = newTracer(p, o.Clock)
	}
	return r
}

func (r *Run) setExit(resp *Response) {
	if r.exit != nil {
		r.env.Logger.Warn("datakit exit discarded: an earlier exit already ended the plan",
			"node", r.plan.nodes[r.current].name, "winner", r.plan.nodes[r.exitNode].name)
		return
	}
	r.exit, r.exitNode = resp, r.current
}

// Access runs the access part (spec §5.1). Unless the outcome carries an
// exit, an error or an abort, the request is then proxied.
func (r *Run) Access(ctx context.Context) Outcome {
	r.runPart(ctx, PhaseAccess)
	if r.failure == nil && r.abort == nil && r.exit == nil && r.plan.serviceRequest >= 0 {
		r.applySink(r.plan.serviceRequest, r.ex.ApplyServiceRequest)
	}
	return r.outcome()
}

// Response runs the response part after the upstream answered, then applies
// `response` unless an exit replaced the upstream response or the request is
// traced.
func (r *Run) Response(ctx context.Context) Outcome {
	if r.failure != nil || r.abort != nil || r.exit != nil {
		return r.outcome()
	}
	r.runPart(ctx, PhaseResponse)
	if id := r.plan.response; id >= 0 && r.failure == nil && r.abort == nil {
		switch {
		case r.exit != nil:
		case r.trace != nil:
			r.skipSink(id)
		default:
			r.applySink(id, r.ex.ApplyResponse)
		}
	}
	return r.outcome()
}

func (r *Run) outcome() Outcome {
	return Outcome{Exit: r.exit, Err: r.failure, Abort: r.abort}
}

// readySet is a set of node ids (≤ 128: 64 declared plus implicit nodes)
// iterated in id order.
type readySet [2]uint64

func (s *readySet) add(id int)  { s[id>>6] |= 1 << (id & 63) }
func (s *readySet) empty() bool { return s[0] == 0 && s[1] == 0 }
func (s *readySet) pop() int {
	for w := range s {
		if s[w] != 0 {
			b := bits.TrailingZeros64(s[w])
			s[w] &^= 1 << b
			return w<<6 | b
		}
	}
	return -1
}

type asyncResult struct {
	id   int
	outs []any
	err  error
}

// runPart is the scheduler: pure nodes run inline in id order, async nodes
// are dispatched as soon as they are ready (up to MaxInflight) while the loop
// continues with whatever else is ready.
func (r *Run) runPart(parent context.Context, phase Phase) {
	p := r.plan
	var ready, waiting readySet
	for id, n := range p.nodes {
		if n.phase == phase && r.nodes[id].remaining == 0 && !r.isSink(id) && r.nodes[id].status == statusPending {
			ready.add(id)
		}
	}
	ctx := parent
	var results chan asyncResult
	cancel := func() {}
	if p.asyncIn[phase] > 0 {
		ctx, cancel = context.WithTimeout(parent, p.opts.PlanTimeout)
		results = make(chan asyncResult, p.asyncIn[phase])
	}
	defer cancel()
	// Nodes released while ready is being worked through go to next: they
	// became runnable later than everything in ready, which starts first
	// (spec §5.1: ties in nodes order, otherwise as soon as runnable).
	var next readySet
	inflight := 0
	for r.failure == nil && r.abort == nil {
		for !ready.empty() && r.failure == nil && r.abort == nil {
			id := ready.pop()
			switch {
			case r.nodes[id].doomed:
				r.skip(id, phase, &next)
			case p.nodes[id].async && inflight >= p.opts.MaxInflight:
				waiting.add(id)
			case p.nodes[id].async:
				if r.dispatch(ctx, id, results) {
					inflight++
				} else {
					r.settle(id, phase, &next)
				}
			default:
				r.runInline(parent, ctx, id)
				r.settle(id, phase, &next)
			}
			if ready.empty() {
				ready, next = next, readySet{}
			}
		}
		if inflight == 0 || r.failure != nil || r.abort != nil {
			break
		}
		select {
		case res := <-results:
			for _, res := range r.arrivals.take(res) {
				inflight--
				r.finishAsync(parent, res)
				r.settle(res.id, phase, &ready)
				if !waiting.empty() && inflight < p.opts.MaxInflight {
					ready.add(waiting.pop())
				}
			}
		case <-ctx.Done():
			r.timeOut(parent, phase)
		}
	}
	if r.failure != nil || r.abort != nil {
		cancel()
		for _, res := range r.arrivals.held {
			inflight--
			r.cancelNode(res.id)
		}
		r.arrivals.held = nil
		for ; inflight > 0; inflight-- {
			res := <-results
			r.cancelNode(res.id)
		}
		for id, n := range p.nodes {
			if n.phase == phase && r.nodes[id].status == statusPending && !n.implicit {
				r.cancelNode(id)
			}
		}
	}
}

// timeOut handles the end of a part's context: the client went away, or the
// plan exceeded datakit_plan_timeout and its running nodes fail.
func (r *Run) timeOut(parent context.Context, phase Phase) {
	if err := parent.Err(); err != nil {
		r.abort = err
		return
	}
	msg := fmt.Errorf("plan exceeded time limit of %d ms", r.plan.opts.PlanTimeout.Milliseconds())
	for id, n := range r.plan.nodes {
		if n.phase == phase && r.nodes[id].status == statusRunning {
			r.nodes[id].status = statusError
			r.nodes[id].err = msg
			r.trace.fail(id, msg, nil)
			if r.plan.opts.Recorder != nil {
				r.record(id, RecordError)
			}
			if r.failure == nil {
				r.failure = r.nodeError(id, msg)
			}
		}
	}
}

func (r *Run) isSink(id int) bool { return id == r.plan.serviceRequest || id == r.plan.response }

// runInline runs a pure or implicit node under the part's ctx; parent is
// the request's context (see nodeFailed).
func (r *Run) runInline(parent, ctx context.Context, id int) {
	n := r.plan.nodes[id]
	nr := &r.nodes[id]
	nr.status = statusRunning
	if n.implicit {
		r.runImplicit(ctx, id)
		return
	}
	if r.plan.opts.Recorder != nil {
		nr.startedAt = r.now()
	}
	in, err := r.gather(id)
	r.trace.run(id, in)
	if err != nil {
		r.fail(id, err, nil)
		return
	}
	if n.isBranch {
		r.runBranch(id, in[0])
		return
	}
	r.current = id
	outs, err := safeRun(ctx, n.node, &r.env, in, r.env.Logger, n)
	if err != nil {
		r.nodeFailed(parent, id, err, outs)
		return
	}
	r.complete(id, outs)
}

// nodeFailed records a node's error. Once the request itself has ended
// (the client left), the error is that cancellation as the node saw it:
// the run is aborted and the node cancelled, never failed, so a client
// leaving is not logged or counted as a node failure.
func (r *Run) nodeFailed(parent context.Context, id int, err error, outs []any) {
	if perr := parent.Err(); perr != nil {
		r.abort = perr
		r.cancelNode(id)
		return
	}
	r.fail(id, err, outs)
}

func safeRun(ctx context.Context, node Node, env *Env, in []any, logger *slog.Logger, n *pnode) (outs []any, err error) {
	defer func() {
		if v := recover(); v != nil {
			logger.Error("datakit node panicked", "node", n.name, "type", n.typ, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			outs, err = nil, errInternal
		}
	}()
	return node.Run(ctx, env, in)
}

func (r *Run) dispatch(ctx context.Context, id int, results chan<- asyncResult) bool {
	n := r.plan.nodes[id]
	nr := &r.nodes[id]
	in, err := r.gather(id)
	r.trace.run(id, in)
	if err != nil {
		r.fail(id, err, nil)
		return false
	}
	nr.status = statusRunning
	nr.startedAt = r.trace.now()
	if r.plan.opts.Recorder != nil {
		nr.startedAt = r.now()
	}
	r.arrivals.dispatched(id)
	go func() {
		outs, err := safeRun(ctx, n.node, &r.env, in, r.env.Logger, n)
		results <- asyncResult{id: id, outs: outs, err: err}
	}()
	return true
}

func (r *Run) finishAsync(parent context.Context, res asyncResult) {
	nr := &r.nodes[res.id]
	if nr.status != statusRunning {
		return // already failed by the plan timeout
	}
	r.trace.resume(res.id, nr.startedAt)
	if res.err != nil {
		r.nodeFailed(parent, res.id, res.err, res.outs)
		return
	}
	r.complete(res.id, res.outs)
}

func (r *Run) complete(id int, outs []any) {
	nr := &r.nodes[id]
	nr.status = statusComplete
	nr.outs = outs
	r.trace.complete(id, outs)
	if r.plan.opts.Recorder != nil {
		r.record(id, RecordSuccess)
	}
}

func (r *Run) fail(id int, err error, outs []any) {
	err = redactError(err, r.secrets)
	nr := &r.nodes[id]
	nr.status = statusError
	nr.err = err
	nr.outs = outs
	r.trace.fail(id, err, outs)
	if r.plan.opts.Recorder != nil {
		r.record(id, RecordError)
	}
	if r.failure == nil {
		r.failure = r.nodeError(id, err)
	}
}

func (r *Run) nodeError(id int, err error) *NodeError {
	n := r.plan.nodes[id]
	ne := &NodeError{Name: n.name, Type: n.typ, Err: err}
	if !n.implicit {
		ne.Index = n.index + 1
	}
	return ne
}

func (r *Run) cancelNode(id int) {
	nr := &r.nodes[id]
	wasRunning := nr.status == statusRunning
	if nr.status != statusPending && !wasRunning {
		return
	}
	nr.status = statusCanceled
	r.trace.cancel(id, wasRunning, nr.startedAt)
	if r.plan.opts.Recorder != nil {
		r.record(id, RecordCancelled)
	}
}

// settle propagates a finished node to its dependents: a completed node
// satisfies them, a skipped one dooms them (spec §5.2).
func (r *Run) settle(id int, phase Phase, ready *readySet) {
	nr := &r.nodes[id]
	if nr.status != statusComplete && nr.status != statusSkipped {
		return
	}
	n := r.plan.nodes[id]
	if n.isBranch && nr.status == statusComplete {
		for _, t := range n.then {
			r.release(t, phase, ready)
		}
		for _, t := range n.els {
			r.release(t, phase, ready)
		}
	}
	for _, dep := range n.dependents {
		if nr.status == statusSkipped && !r.isSink(dep) {
			r.nodes[dep].doomed = true
		}
		r.release(dep, phase, ready)
	}
}

func (r *Run) release(dep int, phase Phase, ready *readySet) {
	d := &r.nodes[dep]
	d.remaining--
	if d.remaining == 0 && r.plan.nodes[dep].phase == phase && !r.isSink(dep) && d.status == statusPending {
		ready.add(dep)
	}
}

func (r *Run) skip(id int, phase Phase, ready *readySet) {
	r.nodes[id].status = statusSkipped
	r.trace.skip(id)
	if r.plan.opts.Recorder != nil {
		r.record(id, RecordSkipped)
	}
	n := r.plan.nodes[id]
	if n.isBranch {
		// A skipped branch skips both of its lists.
		for _, t := range append(append([]int(nil), n.then...), n.els...) {
			r.nodes[t].doomed = true
			r.release(t, phase, ready)
		}
	}
	r.settle(id, phase, ready)
}

func (r *Run) runBranch(id int, v any) {
	b, ok := v.(bool)
	if !ok {
		r.fail(id, fmt.Errorf("branch input must be a boolean, got %s", JSONType(v)), nil)
		return
	}
	n := r.plan.nodes[id]
	unselected, label := n.els, "then"
	if !b {
		unselected, label = n.then, "else"
	}
	r.nodes[id].status = statusComplete
	r.trace.completeBranch(id, label)
	if r.plan.opts.Recorder != nil {
		r.record(id, RecordSuccess)
	}
	for _, t := range unselected {
		r.nodes[t].doomed = true
	}
}

// gather collects a node's inputs: each connected field's source value, read
// by sub-path or picked from a node-wise value, then checked against the
// field's type (spec §5.4).
func (r *Run) gather(id int) ([]any, error) {
	n := r.plan.nodes[id]
	in := r.ins[n.inOffset : n.inOffset+len(n.inFields) : n.inOffset+len(n.inFields)]
	for i := range n.ins {
		e := &n.ins[i]
		if r.nodes[e.src].status == statusSkipped {
			continue
		}
		v := r.value(e.src, e.srcField)
		if len(e.path) > 0 {
			v = Index(v, e.path)
		}
		if e.pick != "" && v != nil {
			m, ok := v.(map[string]any)
			if !ok {
				return in, errors.New(mismatchMessage(SelfField, e.srcRef, TypeObject, v))
			}
			v = m[e.pick]
		}
		cv, err := Convert(v, e.typ)
		if err != nil && n.isBranch {
			return in, fmt.Errorf("branch input must be a boolean, got %s", JSONType(v)) // spec §7.6
		}
		if err != nil {
			return in, errors.New(mismatchMessage(n.inFields[e.field].Name, e.srcRef, e.typ, v))
		}
		in[e.field] = cv
	}
	return in, nil
}

// value is a source node's output field, or its node-wise value.
func (r *Run) value(src, field int) any {
	nr := &r.nodes[src]
	if field >= 0 {
		if field < len(nr.outs) {
			return nr.outs[field]
		}
		return nil
	}
	outputs := r.plan.nodes[src].decl.Outputs
	if len(outputs) == 0 {
		if len(nr.outs) > 0 {
			return nr.outs[0]
		}
		return nil
	}
	if nr.self == nil {
		nr.self = make(map[string]any, len(outputs))
		for i, f := range outputs {
			var v any
			if i < len(nr.outs) {
				v = nr.outs[i]
			}
			nr.self[f.Name] = v
		}
	}
	return nr.self
}

// runImplicit runs the implicit source nodes: request and service_response
// read the fields the plan uses from the Exchange.
func (r *Run) runImplicit(ctx context.Context, id int) {
	p := r.plan
	var fields []int
	read := r.ex.Request
	switch id {
	case p.request:
		fields = p.requestFields
	case p.serviceResponse:
		fields, read = p.responseFields, r.ex.ServiceResponse
	case p.vault:
		r.runVault(id)
		return
	default:
		r.fail(id, fmt.Errorf("implicit node %q is not supported", p.nodes[id].name), nil)
		return
	}
	r.trace.run(id, nil)
	outs := make([]any, len(p.nodes[id].decl.Outputs))
	for _, f := range fields {
		v, err := read(ctx, p.nodes[id].decl.Outputs[f].Name)
		if err != nil {
			r.abort = err
			return
		}
		outs[f] = v
	}
	r.completeFields(id, outs, fields)
}

// runVault resolves the vault entries the plan reads; every value becomes a
// secret of the request, masked wherever the run shows text (spec §8.2).
func (r *Run) runVault(id int) {
	p := r.plan
	r.trace.run(id, nil)
	outs := make([]any, len(p.vaultRefs))
	for _, f := range p.vaultFields {
		ref := p.vaultRefs[f]
		v, err := p.opts.Secrets.resolve(ref)
		if err != nil {
			r.fail(id, fmt.Errorf("cannot resolve vault reference %q: %w", ref.entry, err), nil)
			return
		}
		if v != "" {
			r.secrets = append(r.secrets, v)
		}
		outs[f] = v
	}
	r.completeFields(id, outs, p.vaultFields)
}

func (r *Run) completeFields(id int, outs []any, fields []int) {
	nr := &r.nodes[id]
	nr.status = statusComplete
	nr.outs = outs
	r.trace.completeSome(id, outs, fields)
}

// applySink applies service_request or response: headers merged, query and
// body replaced; a field fed by a skipped node is left unchanged.
func (r *Run) applySink(id int, apply func(*Message) error) {
	n := r.plan.nodes[id]
	in, err := r.gather(id)
	r.trace.run(id, in)
	if err != nil {
		r.fail(id, err, nil)
		return
	}
	msg, err := sinkMessage(n, in)
	if err == nil {
		err = apply(msg)
	}
	if err != nil {
		r.fail(id, err, nil)
		return
	}
	r.nodes[id].status = statusComplete
	r.trace.completeEmpty(id)
}

func (r *Run) skipSink(id int) {
	r.nodes[id].status = statusSkipped
	r.trace.skip(id)
}

// sinkMessage converts the inputs of service_request or response into a
// Message (spec §4.1, §6).
func sinkMessage(n *pnode, in []any) (*Message, error) {
	msg := &Message{}
	var ctSet bool
	for i, f := range n.inFields {
		v := in[i]
		if v == nil {
			continue
		}
		switch f.Name {
		case "headers":
			lines, err := HeaderLines(v)
			if err != nil {
				return nil, err
			}
			msg.Headers = lines
			for _, l := range lines {
				if l.Name == "Content-Type" {
					ctSet = true
				}
			}
		case "query":
			q := EncodeQuery(v.(map[string]any))
			msg.Query = &q
		case "body":
			b, isJSON, err := EncodeBody(v)
			if err != nil {
				return nil, err
			}
			body := &Body{Bytes: b}
			switch {
			case isJSON:
				body.ContentType = "application/json"
			default:
				body.ContentType = n.inTypes[i]
			}
			msg.Body = body
		}
	}
	if ctSet && msg.Body != nil {
		msg.Body.ContentType = ""
	}
	return msg, nil
}

// FailureBody is the body of the 500 a failed plan answers (spec §5.4): the
// generic message, or with debug the node and its error.
func FailureBody(ne *NodeError, debug bool, requestID string) []byte {
	var v any
	if debug {
		node := map[string]any{"name": ne.Name, "type": ne.Type}
		if ne.Index > 0 {
			node["index"] = ne.Index
		}
		v = map[string]any{"error": ne.Err.Error(), "message": "node execution error", "node": node, "request_id": requestID}
	} else {
		v = map[string]any{"message": "An unexpected error occurred", "request_id": requestID}
	}
	b, _ := EncodeJSON(v)
	return b
}

// arrivals orders async results: as they arrive, or, when ordered, in
// dispatch order (results that overtake an earlier dispatch are held).
type arrivals struct {
	ordered bool
	queue   []int // dispatched ids not yet handled, in dispatch order
	held    []asyncResult
	out     []asyncResult // reused: the scheduler is one goroutine
}

func (a *arrivals) dispatched(id int) {
	if a.ordered {
		a.queue = append(a.queue, id)
	}
}

// take returns the results that can be handled now that res arrived.
func (a *arrivals) take(res asyncResult) []asyncResult {
	a.out = a.out[:0]
	if !a.ordered {
		a.out = append(a.out, res)
		return a.out
	}
	a.held = append(a.held, res)
	out := a.out
	for progress := true; progress && len(a.queue) > 0; {
		progress = false
		for i, h := range a.held {
			if h.id == a.queue[0] {
				out = append(out, h)
				a.held = append(a.held[:i], a.held[i+1:]...)
				a.queue = a.queue[1:]
				progress = true
				break
			}
		}
	}
	a.out = out
	return out
}
