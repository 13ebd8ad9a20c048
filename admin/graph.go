package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/store"
	"github.com/datakit-gateway/datakit/graphrun"
)

// datakitPlugin is the name of the plugin whose configuration is a graph.
const datakitPlugin = "datakit"

// Graphs compiles datakit plugin configurations for the graph endpoints
// (§4.11) as the running node compiles them at load.
type Graphs interface {
	// Compile compiles a datakit plugin's configuration; an invalid one is
	// an *engine.ConfigError.
	Compile(cfg map[string]any) (*engine.Plan, error)
}

// GraphsFunc adapts a function to Graphs.
type GraphsFunc func(cfg map[string]any) (*engine.Plan, error)

// Compile calls f.
func (f GraphsFunc) Compile(cfg map[string]any) (*engine.Plan, error) { return f(cfg) }

var (
	errGraphFormat = &Error{Status: http.StatusBadRequest, Message: "format must be one of: dot, json"}
	errLiveCalls   = &Error{Status: http.StatusBadRequest, Message: "live_calls is not enabled on this node"}
)

// graphBody is GET /plugins/{p}/graph?format=json.
type graphBody struct {
	Nodes  []graphNode         `json:"nodes"`
	Edges  []graphEdge         `json:"edges"`
	Phases map[string][]string `json:"phases"`
}

type graphNode struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Phase    string `json:"phase"`
	Implicit bool   `json:"implicit"`
}

// graphEdge's fields are null for control and proxy edges.
type graphEdge struct {
	Source      string  `json:"source"`
	SourceField *string `json:"source_field"`
	Target      string  `json:"target"`
	TargetField *string `json:"target_field"`
	Kind        string  `json:"kind"`
}

func newGraphBody(v engine.GraphView) graphBody {
	g := graphBody{Nodes: make([]graphNode, 0, len(v.Nodes)), Edges: make([]graphEdge, 0, len(v.Edges)),
		Phases: map[string][]string{"access": {}, "response": {}}}
	for _, n := range v.Nodes {
		phase := n.Phase.String()
		g.Nodes = append(g.Nodes, graphNode{Name: n.Name, Type: n.Type, Phase: phase, Implicit: n.Implicit})
		g.Phases[phase] = append(g.Phases[phase], n.Name)
	}
	for _, e := range v.Edges {
		ge := graphEdge{Source: e.Source, Target: e.Target, Kind: string(e.Kind)}
		if e.Kind == engine.EdgeData {
			sf, df := e.SourceField, e.TargetField
			ge.SourceField, ge.TargetField = &sf, &df
		}
		g.Edges = append(g.Edges, ge)
	}
	return g
}

// datakitConfig finds the datakit plugin {plugins} names (id or
// instance_name) in the snapshot or the store and returns its config.
func (a *api) datakitConfig(r *http.Request) (map[string]any, error) {
	ref := param(r, plugins.entity)
	var p *config.Plugin
	switch {
	case a.dbless:
		it, ok := plugins.find(plugins.items(a.active()), ref)
		if !ok {
			return nil, errNotFound
		}
		p = it.value.(*config.Plugin)
	case a.opts.Store == nil:
		return nil, errDatabaseUnreachable
	default:
		raw, err := a.opts.Store.Get(r.Context(), store.Kind(plugins.entity), ref)
		if err != nil {
			return nil, err
		}
		p = &config.Plugin{}
		if err := json.Unmarshal(raw, p); err != nil {
			return nil, err
		}
	}
	if p.Name != datakitPlugin || a.opts.Graphs == nil {
		return nil, errNotFound
	}
	if p.Config == nil {
		return map[string]any{}, nil
	}
	return p.Config, nil
}

// configViolation is an invalid datakit configuration as a 400 code 2
// (§9.8); other errors pass through.
func configViolation(err error) error {
	var ce *engine.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	fe := &config.FieldErrors{}
	fe.Field("config").AddList(ce.Messages...)
	return schemaViolation(fe)
}

// pluginGraph serves GET /plugins/{p}/graph.
func (a *api) pluginGraph(w http.ResponseWriter, r *http.Request) {
	format := "json"
	if q := r.URL.Query(); q.Has("format") {
		format = q.Get("format")
	}
	if format != "json" && format != "dot" {
		a.fail(w, r, errGraphFormat)
		return
	}
	cfg, err := a.datakitConfig(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	plan, err := a.opts.Graphs.Compile(cfg)
	if err != nil {
		a.fail(w, r, configViolation(err))
		return
	}
	if format == "json" {
		writeJSON(w, r, http.StatusOK, newGraphBody(plan.Graph()))
		return
	}
	dot := plan.DOT()
	w.Header().Set("Content-Type", "text/vnd.graphviz; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(dot)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(dot)
	}
}

// graphRunBody is POST /plugins/{p}/graph/run's body: `datakit graph run`'s
// REQ and RESP shapes (spec/datakit.md §12).
type graphRunBody struct {
	Request   graphrun.Request             `json:"request"`
	Mocks     map[string]graphrun.Response `json:"mocks"`
	Upstream  *graphrun.Response           `json:"upstream"`
	LiveCalls bool                         `json:"live_calls"`
}

// runPluginGraph serves POST /plugins/{p}/graph/run: an offline run of the
// plugin's graph, its call nodes answered by mocks — or, with live_calls,
// the unmocked ones sent under the node's destination policy. It writes
// nothing: no store write, no snapshot change.
func (a *api) runPluginGraph(w http.ResponseWriter, r *http.Request) {
	var in graphRunBody
	if b := bodyOf(r); len(b.data) > 0 {
		if b.mediaType != "application/json" {
			a.fail(w, r, errUnsupportedMedia)
			return
		}
		if err := json.Unmarshal(b.data, &in); err != nil {
			a.fail(w, r, errBadJSON)
			return
		}
	}
	cfg, err := a.datakitConfig(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	opts := graphrun.Options{Mocks: in.Mocks, Upstream: in.Upstream, Version: a.opts.Version}
	if in.LiveCalls {
		// Real calls only under the node's destination policy (hardening §2.7).
		if a.opts.GraphLiveCalls == nil {
			a.fail(w, r, errLiveCalls)
			return
		}
		opts.Live = a.opts.GraphLiveCalls
	}
	if opts.Mocks == nil {
		opts.Mocks = map[string]graphrun.Response{}
	}
	res, err := graphrun.Run(r.Context(), cfg, in.Request, opts)
	var ue *graphrun.UsageError
	switch {
	case errors.As(err, &ue):
		a.fail(w, r, &Error{Status: http.StatusBadRequest, Message: ue.Msg})
		return
	case err != nil:
		a.fail(w, r, configViolation(err))
		return
	}
	writeJSON(w, r, http.StatusOK, res)
}
