package engine

import "time"

// Recorder receives the end of each declared node's run, for metrics
// (gateway.md §11.1). It is called from the scheduler's goroutine and must
// not block. A plan compiled without one pays only a nil check per node.
type Recorder interface {
	// NodeDone reports a node's final status — success, error, skipped or
	// cancelled — and, for nodes that ran, how long they ran (0 otherwise).
	NodeDone(node, typ, status string, d time.Duration)
}

// Statuses reported to a Recorder.
const (
	RecordSuccess   = "success"
	RecordError     = "error"
	RecordSkipped   = "skipped"
	RecordCancelled = "cancelled"
)

// now is the run's clock: the trace's when tracing, else the wall clock.
func (r *Run) now() time.Time {
	if r.trace != nil {
		return r.trace.now()
	}
	return time.Now()
}

// record reports node id to the plan's Recorder; callers check that there
// is one, so runs without it stay free of the call.
func (r *Run) record(id int, status string) {
	n := r.plan.nodes[id]
	if n.implicit {
		return
	}
	var d time.Duration
	if st := r.nodes[id].startedAt; !st.IsZero() && (status == RecordSuccess || status == RecordError) {
		d = r.now().Sub(st)
	}
	r.plan.opts.Recorder.NodeDone(n.name, n.typ, status, d)
}
