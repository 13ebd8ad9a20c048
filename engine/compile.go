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
	for i, rn := range rawNodes {
		d.decodeNode(d.nodes[i], rn)
	}
	d.decodeDebug(doc)
	d.errs = append(d.errs, resErrs...)
	edges := d.connect()
	modes := d.resolveModes(edges)
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

// resolveModes asks mode-dependent kinds (property) which mode they run in.
func (d *decoder) resolveModes(edges []*edge) map[*declNode]ModeRules {
	fed := map[*declNode]bool{}
	for _, e := range edges {
		fed[e.dst] = true
	}
	modes := map[*declNode]ModeRules{}
	for _, n := range d.nodes {
		if !n.valid || n.decl.Mode == nil {
			continue
		}
		rules, err := n.decl.Mode(fed[n])
		if err != nil {
			d.errs = append(d.errs, fmt.Errorf("%s: %s: %w", n.loc, n.decl.ModeField, err))
			continue
		}
		modes[n] = rules
	}
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
