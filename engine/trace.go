package engine

import (
	"strings"
	"time"
)

// Trace is the debug trace of one request (spec §10); members are in the
// order the specification shows.
type Trace struct {
	StartedAt float64      `json:"started_at"`
	EndedAt   float64      `json:"ended_at"`
	Duration  float64      `json:"duration"`
	Status    string       `json:"status"`
	Nodes     []TraceNode  `json:"nodes"`
	Events    []TraceEvent `json:"events"`
}

// TraceNode is a node's final state.
type TraceNode struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Phase  string `json:"phase"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// TraceEvent is one step of the run; Values is present exactly on run,
// complete and fail.
type TraceEvent struct {
	Name     string        `json:"name"`
	Type     string        `json:"type"`
	Action   string        `json:"action"`
	At       float64       `json:"at"`
	Duration *float64      `json:"duration,omitempty"`
	Values   *[]TraceValue `json:"values,omitempty"`
}

// TraceValue is one field value: Key is empty for the error entry, Value is
// omitted when null.
type TraceValue struct {
	Key   string `json:"key,omitempty"`
	Type  string `json:"type"`
	Value any    `json:"value,omitempty"`
}

// redactedMembers are the header names whose values traces mask in any
// object (gateway.md §11.2), lower-cased.
var redactedMembers = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
	"kong-admin-token": true, "x-api-key": true, "apikey": true,
}

const masked = "********"

// tracer records events; a nil *tracer records nothing, so the scheduler
// calls it unconditionally.
type tracer struct {
	plan    *Plan
	clock   func() time.Time
	started time.Time
	events  []TraceEvent
}

func newTracer(p *Plan, clock func() time.Time) *tracer {
	if clock == nil {
		clock = time.Now
	}
	return &tracer{plan: p, clock: clock, started: clock()}
}

func (t *tracer) now() time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.clock()
}

func seconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1e6 }

func (t *tracer) event(id int, action string, values *[]TraceValue, since time.Time) {
	n := t.plan.nodes[id]
	now := t.clock()
	ev := TraceEvent{Name: n.name, Type: n.typ, Action: action, At: seconds(now.Sub(t.started)), Values: values}
	if !since.IsZero() {
		d := seconds(now.Sub(since))
		ev.Duration = &d
	}
	t.events = append(t.events, ev)
}

func (t *tracer) run(id int, in []any) {
	if t == nil {
		return
	}
	n := t.plan.nodes[id]
	vals := []TraceValue{}
	last := -1
	for _, e := range n.ins {
		if e.field == last {
			continue
		}
		last = e.field
		f := n.inFields[e.field]
		vals = append(vals, TraceValue{Key: f.Name, Type: f.Type.String(), Value: redact(in[e.field])})
	}
	t.event(id, "run", &vals, time.Time{})
}

func (t *tracer) resume(id int, started time.Time) {
	if t != nil {
		t.event(id, "resume", nil, started)
	}
}

func (t *tracer) outputs(id int, outs []any, fields []int) []TraceValue {
	n := t.plan.nodes[id]
	vals := []TraceValue{}
	if len(n.decl.Outputs) == 0 {
		if n.decl.Output != TypeNone && len(outs) > 0 {
			vals = append(vals, TraceValue{Key: SelfField, Type: n.decl.Output.String(), Value: redact(outs[0])})
		}
		return vals
	}
	for i, f := range n.decl.Outputs {
		if fields != nil && !containsInt(fields, i) {
			continue
		}
		var v any
		if i < len(outs) {
			v = outs[i]
		}
		vals = append(vals, TraceValue{Key: f.Name, Type: f.Type.String(), Value: redact(v)})
	}
	return vals
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (t *tracer) complete(id int, outs []any) {
	if t != nil {
		vals := t.outputs(id, outs, nil)
		t.event(id, "complete", &vals, time.Time{})
	}
}

func (t *tracer) completeSome(id int, outs []any, fields []int) {
	if t != nil {
		vals := t.outputs(id, outs, fields)
		if fields == nil {
			vals = []TraceValue{}
		}
		t.event(id, "complete", &vals, time.Time{})
	}
}

func (t *tracer) completeEmpty(id int) {
	if t != nil {
		t.event(id, "complete", &[]TraceValue{}, time.Time{})
	}
}

func (t *tracer) completeBranch(id int, label string) {
	if t != nil {
		t.event(id, "complete", &[]TraceValue{{Key: "selected", Type: "string", Value: label}}, time.Time{})
	}
}

func (t *tracer) fail(id int, err error, outs []any) {
	if t == nil {
		return
	}
	vals := []TraceValue{{Type: "error", Value: err.Error()}}
	if outs != nil {
		vals = append(vals, t.outputs(id, outs, nil)...)
	}
	t.event(id, "fail", &vals, time.Time{})
}

func (t *tracer) cancel(id int, wasRunning bool, started time.Time) {
	if t == nil {
		return
	}
	if !wasRunning {
		started = time.Time{}
	}
	t.event(id, "cancel", nil, started)
}

func (t *tracer) skip(id int) {
	if t != nil {
		t.event(id, "skip", nil, time.Time{})
	}
}

var statusNames = [...]string{
	statusPending: "NODE_PENDING", statusRunning: "NODE_PENDING", statusComplete: "NODE_COMPLETE",
	statusError: "NODE_ERROR", statusCanceled: "NODE_CANCELED", statusSkipped: "NODE_SKIPPED",
}

// Trace ends the run's trace and returns it; nil when the run is not traced.
func (r *Run) Trace() *Trace {
	t := r.trace
	if t == nil {
		return nil
	}
	ended := t.clock()
	tr := &Trace{
		StartedAt: float64(t.started.UnixMicro()) / 1e6,
		EndedAt:   float64(ended.UnixMicro()) / 1e6,
		Duration:  seconds(ended.Sub(t.started)),
		Status:    "PLAN_COMPLETE",
		Events:    t.events,
	}
	if r.failure != nil {
		tr.Status = "PLAN_ERROR"
	}
	for _, id := range r.plan.traceOrder {
		n, nr := r.plan.nodes[id], &r.nodes[id]
		tn := TraceNode{Name: n.name, Type: n.typ, Phase: n.phase.String(), Status: statusNames[nr.status]}
		if nr.status == statusError && nr.err != nil {
			tn.Error = nr.err.Error()
		}
		tr.Nodes = append(tr.Nodes, tn)
	}
	if tr.Events == nil {
		tr.Events = []TraceEvent{}
	}
	if len(r.secrets) > 0 {
		// Secrets are known once the vault node ran, but may appear in
		// anything recorded before or after: mask the whole trace.
		for i := range tr.Events {
			if vals := tr.Events[i].Values; vals != nil {
				for j := range *vals {
					(*vals)[j].Value = maskValue((*vals)[j].Value, r.secrets)
				}
			}
		}
		for i := range tr.Nodes {
			tr.Nodes[i].Error = maskSecrets(tr.Nodes[i].Error, r.secrets)
		}
	}
	return tr
}

// maskValue replaces the request's secrets inside every string of v. Maps
// and arrays are the trace's own copies, changed in place.
func maskValue(v any, secrets []string) any {
	switch x := v.(type) {
	case string:
		return maskSecrets(x, secrets)
	case map[string]any:
		for k, e := range x {
			x[k] = maskValue(e, secrets)
		}
	case []any:
		for i, e := range x {
			x[i] = maskValue(e, secrets)
		}
	}
	return v
}

// Redact returns a copy of v as a trace would show it: members named like
// credential headers masked and the request's vault values replaced
// (spec §10, §12: tools print what a graph did through it).
func (r *Run) Redact(v any) any {
	return maskValue(redact(v), r.secrets)
}

// redact copies a value with the members named like credential headers
// masked (spec §10).
func redact(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if redactedMembers[strings.ToLower(k)] && e != nil {
				out[k] = masked
			} else {
				out[k] = redact(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redact(e)
		}
		return out
	}
	return v
}
