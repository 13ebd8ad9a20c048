// Package datakit is the gateway plugin that runs Datakit plans: it compiles
// a plugin instance's configuration with the engine and adapts the gateway's
// phases to the plan's access and response parts (gateway.md §9.8).
package datakit

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
)

// Name and Priority of the plugin.
const (
	Name     = "datakit"
	Priority = 810
)

// Options configure the plugin.
type Options struct {
	// Registry holds the node types.
	Registry *engine.Registry
	// Engine are the engine settings (plan timeout, in-flight calls).
	Engine engine.Options
	// NodeID is kong.node.id.
	NodeID string
	// Setting returns a gateway setting for kong.configuration.{key}; nil
	// for unknown or sensitive ones.
	Setting func(name string) any
	// Version is the plugin version reported in schemas.
	Version string
	// Metrics records plan outcomes and node runs (gateway.md §11.1); nil
	// records nothing.
	Metrics Metrics
	// TargetDestination, if non-nil, is the destination policy of
	// kong.service.target (a dynamic destination, hardening §2.7), asked with
	// the host and port when the property is set: an IP literal is checked in
	// full, a name by the name rules. Its error fails the node (`destination
	// not allowed`). Zero value: every target is allowed.
	TargetDestination func(host string, port uint16) error
}

// Metrics receives what the plugin measures; plugin is the instance's
// instance_name, else its id.
type Metrics interface {
	// PlanRun counts one request's run: complete, error or exit.
	PlanRun(plugin, outcome string)
	// NodeDone is engine.Recorder with the plugin label.
	NodeDone(plugin, node, typ, status string, d time.Duration)
	// CallDone and CacheLookup are nodes.Metrics with the plugin label.
	CallDone(plugin, node, code string)
	CacheLookup(plugin, node, result string)
}

// Plan outcomes for Metrics.PlanRun.
const (
	OutcomeComplete = "complete"
	OutcomeError    = "error"
	OutcomeExit     = "exit"
)

// nodeRecorder binds Metrics to one instance for the engine and the node
// types (nodes.Metrics).
type nodeRecorder struct {
	m      Metrics
	plugin string
}

func (r nodeRecorder) NodeDone(node, typ, status string, d time.Duration) {
	r.m.NodeDone(r.plugin, node, typ, status, d)
}

func (r nodeRecorder) CallDone(node, code string) { r.m.CallDone(r.plugin, node, code) }

func (r nodeRecorder) CacheLookup(node, result string) { r.m.CacheLookup(r.plugin, node, result) }

// Plugin is the datakit plugin.
type Plugin struct{ opts Options }

var _ gateway.Plugin = (*Plugin)(nil)

// New returns the plugin.
func New(opts Options) *Plugin {
	if opts.Setting == nil {
		opts.Setting = func(string) any { return nil }
	}
	return &Plugin{opts: opts}
}

func (p *Plugin) Name() string    { return Name }
func (p *Plugin) Priority() int   { return Priority }
func (p *Plugin) Version() string { return p.opts.Version }
func (p *Plugin) Schema() config.PluginSchema {
	return config.PluginSchema{}
}

// ConfigError is a configuration the engine rejected: its messages are the
// violations under `config` (errors.Join form for the config package).
type ConfigError struct{ *engine.ConfigError }

// Unwrap lists one error per message.
func (e ConfigError) Unwrap() []error {
	errs := make([]error, len(e.Messages))
	for i, m := range e.Messages {
		errs[i] = errors.New(m)
	}
	return errs
}

// Compile compiles the configuration into a plan.
func (p *Plugin) Compile(_ context.Context, cfg config.Plugin, env gateway.CompileEnv) (gateway.Instance, error) {
	opts := p.opts.Engine
	opts.PluginID = cfg.ID
	label := cfg.ID
	if cfg.InstanceName != nil && *cfg.InstanceName != "" {
		label = *cfg.InstanceName
	}
	if p.opts.Metrics != nil {
		opts.Recorder = nodeRecorder{m: p.opts.Metrics, plugin: label}
	}
	plan, err := engine.Compile(anyConfig(cfg.Config), p.opts.Registry, opts)
	if err != nil {
		var ce *engine.ConfigError
		if errors.As(err, &ce) {
			return nil, ConfigError{ce}
		}
		return nil, err
	}
	inst := &instance{plugin: p, plan: plan, id: cfg.ID, label: label, logger: env.Logger, config: withDefaults(cfg.Config)}
	if plan.HasResponsePart() || plan.Debug() {
		return &responseInstance{inst}, nil
	}
	return inst, nil
}

// withDefaults is the configuration as stored: the schema's top-level
// default (debug: false) filled in, so tools that fill defaults from
// /schemas/plugins/datakit (decK) see no difference after a sync.
func withDefaults(cfg map[string]any) map[string]any {
	if cfg != nil && cfg["debug"] != nil {
		return cfg
	}
	out := make(map[string]any, len(cfg)+1)
	for k, v := range cfg {
		out[k] = v
	}
	out["debug"] = false
	return out
}

// anyConfig hands the engine the configuration as decoded values; a nil map
// is an absent configuration.
func anyConfig(m map[string]any) any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// instance is a compiled datakit plugin instance: an access handler. Plans
// with a response part (or debug) are wrapped in responseInstance.
type instance struct {
	plugin *Plugin
	plan   *engine.Plan
	id     string
	label  string // the metrics' plugin label
	logger *slog.Logger
	config map[string]any
}

// responseInstance adds the response phase.
type responseInstance struct{ *instance }

var (
	_ gateway.AccessHandler      = (*instance)(nil)
	_ gateway.BodyNeeder         = (*instance)(nil)
	_ gateway.ResponseHandler    = (*responseInstance)(nil)
	_ gateway.ResponseBodyNeeder = (*responseInstance)(nil)
)

// Config is the configuration as stored (defaults are the engine's).
func (in *instance) Config() map[string]any { return in.config }

// MetricsLabel is the plugin label of the instance's series (gateway.md
// §11.1): instance_name, else the id.
func (in *instance) MetricsLabel() string { return in.label }

// MetricNodes yields the name and type of each declared node: with
// MetricsLabel, the label values the instance's node series can carry.
func (in *instance) MetricNodes() iter.Seq2[string, string] {
	return func(yield func(node, typ string) bool) {
		for _, n := range in.plan.Graph().Nodes {
			if !n.Implicit && !yield(n.Name, n.Type) {
				return
			}
		}
	}
}

// NeedsRequestBody reports whether the plan reads request.body.
func (in *instance) NeedsRequestBody() bool { return in.plan.ReadsRequestBody() }

// runState is kept in kong.ctx.plugin between the two phases.
type runState struct {
	run    *engine.Run
	ex     *exchange
	traced bool
	// counted: the plan's outcome was recorded.
	counted bool
}

const stateKey = "\x00datakit.run"

func (in *instance) Access(ctx context.Context, gx *gateway.Exchange) error {
	x := &exchange{gx: gx, inst: in}
	traced := in.plan.Debug() && traceRequested(gx.Request().Header.Get("X-DataKit-Debug-Trace"))
	run := in.plan.NewRun(x, engine.RunOptions{RequestID: gx.RequestID(), Logger: gx.Logger(), Trace: traced})
	st := &runState{run: run, ex: x, traced: traced}
	gx.PluginState(in)[stateKey] = st
	out := run.Access(ctx)
	// A plan with a response part is counted there, unless access ended it.
	if !in.plan.HasResponsePart() || out.Exit != nil || out.Err != nil || out.Abort != nil {
		in.countRun(st, out)
	}
	return in.finish(gx, st, out, true)
}

// countRun records the plan's outcome for the request, once.
func (in *instance) countRun(st *runState, out engine.Outcome) {
	m := in.plugin.opts.Metrics
	if m == nil || st.counted {
		return
	}
	st.counted = true
	switch {
	case out.Err != nil || out.Abort != nil:
		m.PlanRun(in.label, OutcomeError)
	case out.Exit != nil:
		m.PlanRun(in.label, OutcomeExit)
	default:
		m.PlanRun(in.label, OutcomeComplete)
	}
}

// finish turns a part's outcome into the gateway's terms: an exit, a
// failure response, or nothing (carry on).
func (in *instance) finish(gx *gateway.Exchange, st *runState, out engine.Outcome, access bool) error {
	switch {
	case out.Abort != nil:
		return abortError(out.Abort)
	case out.Err != nil:
		in.logFailure(gx, out.Err)
		body := engine.FailureBody(out.Err, in.plan.Debug(), gx.RequestID())
		h := http.Header{"Content-Type": {"application/json"}}
		if st.traced {
			body = in.traceBody(st)
		}
		return &failure{status: http.StatusInternalServerError, header: h, body: body, err: out.Err}
	case out.Exit != nil && (access || gx.ServiceResponse() != nil):
		h := http.Header{}
		for _, l := range out.Exit.Headers {
			h[l.Name] = l.Values
		}
		body := out.Exit.Body
		if st.traced {
			body = in.traceBody(st)
			h.Set("Content-Type", "application/json")
			h.Del("Content-Encoding")
		}
		gx.Exit(out.Exit.Status, body, h)
	}
	return nil
}

func (in *instance) logFailure(gx *gateway.Exchange, ne *engine.NodeError) {
	gx.Logger().Error("datakit node failed", "node", ne.Name, "type", ne.Type, "index", ne.Index,
		"error", ne.Err.Error())
}

func (in *instance) traceBody(st *runState) []byte {
	b, err := engine.EncodeJSON(st.run.Trace())
	if err != nil {
		return []byte(`{"message":"trace unavailable"}`)
	}
	return b
}

// abortError maps an Exchange error (client body) to the gateway's response.
func abortError(err error) error {
	var he *gateway.HTTPError
	if errors.As(err, &he) {
		return he
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &gateway.HTTPError{Status: http.StatusBadRequest, Message: "Bad request", Err: err}
}

// failure is a node failure with its complete 500 response; the plugin has
// logged it.
type failure struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Response() (int, http.Header, []byte) {
	return f.status, f.header.Clone(), f.body
}

func (in *responseInstance) NeedsResponseBody(gx *gateway.Exchange) bool {
	st, _ := gx.PluginState(in.instance)[stateKey].(*runState)
	return in.plan.NeedsResponseBody() || st != nil && st.traced
}

func (in *responseInstance) Response(ctx context.Context, gx *gateway.Exchange) error {
	st, _ := gx.PluginState(in.instance)[stateKey].(*runState)
	if st == nil {
		return nil
	}
	out := st.run.Response(ctx)
	in.countRun(st, out)
	if err := in.finish(gx, st, out, false); err != nil {
		return err
	}
	if st.traced && gx.Source() != "exit" {
		gx.SetResponseBody(in.traceBody(st))
		gx.ResponseHeader().Set("Content-Type", "application/json")
	}
	return nil
}

// traceRequested reads X-DataKit-Debug-Trace (spec §10).
func traceRequested(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "on", "1", "enabled":
		return true
	}
	return false
}

// entityValue is an entity's JSON form as runtime values.
func entityValue(v any, drop ...string) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	out, err := engine.DecodeJSON(b)
	if err != nil {
		return nil
	}
	if m, ok := out.(map[string]any); ok {
		for _, k := range drop {
			delete(m, k)
		}
	}
	return out
}
