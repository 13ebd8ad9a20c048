package engine

import (
	"fmt"
	"time"
)

// Options are the gateway settings a plan is compiled with.
type Options struct {
	// PluginID namespaces per-instance state such as cache keys; zero value:
	// "local".
	PluginID string
	// PlanTimeout bounds each part of a plan (datakit_plan_timeout); zero
	// value: 300 s.
	PlanTimeout time.Duration
	// MaxInflight caps the async nodes of one request running at once; zero
	// value: 32.
	MaxInflight int
	// Secrets resolves resources.vault references, with its cache; zero
	// value: a resolver of the plan's own over the process environment.
	Secrets *Secrets
	// Recorder receives each node's outcome for metrics; zero value: none.
	Recorder Recorder
}

func (o Options) withDefaults() Options {
	if o.PluginID == "" {
		o.PluginID = "local"
	}
	if o.PlanTimeout == 0 {
		o.PlanTimeout = 300 * time.Second
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = 32
	}
	if o.Secrets == nil {
		o.Secrets = NewSecrets()
	}
	return o
}

// CompileBytes parses a YAML or JSON document and compiles it.
func CompileBytes(data []byte, reg *Registry, opts Options) (*Plan, error) {
	doc, err := ParseDocument(data)
	if err != nil {
		return nil, &ConfigError{Messages: []string{err.Error()}}
	}
	return Compile(doc, reg, opts)
}

// Compile validates a decoded configuration (spec §11: every error, in order)
// and compiles it into an immutable Plan. A validation failure is a
// *ConfigError.
func Compile(doc any, reg *Registry, opts Options) (*Plan, error) {
	d := &decoder{reg: reg}
	rawNodes := d.decodeTop(doc)
	// resources are decoded first, since node kinds (cache) look at them,
	// but their errors are reported after the nodes' and debug's.
	resErrs := d.decodeResources(doc)
	d.collectNames(rawNodes)
	ends := make([]int, len(rawNodes))
	for i, rn := range rawNodes {
		d.decodeNode(d.nodes[i], rn)
		ends[i] = len(d.errs)
	}
	modes := d.resolveModes(ends)
	d.decodeDebug(doc)
	d.errs = append(d.errs, resErrs...)
	edges := d.connect()
	dg := d.buildDepGraph(edges)
	var resp map[*declNode]bool
	if d.checkCycles(dg) {
		resp = d.assignPhases(dg, modes)
	}
	if len(d.errs) > 0 {
		msgs := make([]string, len(d.errs))
		for i, e := range d.errs {
			msgs[i] = e.Error()
		}
		return nil, &ConfigError{Messages: msgs}
	}
	return d.buildPlan(edges, dg, resp, opts.withDefaults())
}

// resolveModes asks mode-dependent kinds (property) which mode they run in:
// a node is fed when any declared connection targets it. A mode error is an
// attribute error, so it is spliced in after the node's other attribute
// errors (ends[i] is where node i's errors end in d.errs).
func (d *decoder) resolveModes(ends []int) map[*declNode]ModeRules {
	fed := map[*declNode]bool{}
	for _, n := range d.nodes {
		for _, c := range n.conns {
			if t := d.byName[c.dst.node]; t != nil {
				fed[t] = true
			}
		}
	}
	modes := map[*declNode]ModeRules{}
	errs := make([]error, 0, len(d.errs))
	prev := 0
	for i, n := range d.nodes {
		errs = append(errs, d.errs[prev:ends[i]]...)
		prev = ends[i]
		if !n.valid || n.decl.Mode == nil {
			continue
		}
		rules, err := n.decl.Mode(fed[n])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", n.loc, n.decl.ModeField, err))
			continue
		}
		modes[n] = rules
	}
	d.errs = append(errs, d.errs[prev:]...)
	return modes
}

func (d *decoder) decodeDebug(doc any) {
	top, _ := doc.(map[string]any)
	if top == nil {
		return
	}
	switch v := top["debug"].(type) {
	case nil:
	case bool:
		d.debug = v
	default:
		d.errorf("debug: expected boolean, got %s", JSONType(v))
	}
	for _, k := range SortedKeys(top) {
		if k != "nodes" && k != "debug" && k != "resources" {
			d.errorf("%s: unknown field", k)
		}
	}
}
