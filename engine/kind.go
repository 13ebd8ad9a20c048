package engine

import (
	"context"
	"sort"
)

// IOKeys is the set of connection keys (input, inputs, output, outputs) a node
// type accepts (spec §2.3).
type IOKeys uint8

// The connection keys.
const (
	KeyInput IOKeys = 1 << iota
	KeyInputs
	KeyOutput
	KeyOutputs
)

// Kind is a node type. Decode is called once per declared node at load time;
// it reads the node's own attributes through a (recording every problem with
// a.Errorf or the typed getters) and returns the node's declaration.
type Kind interface {
	Decode(a *Attrs) *Decl
}

// KindFunc adapts a function to the Kind interface.
type KindFunc func(a *Attrs) *Decl

// Decode calls f(a).
func (f KindFunc) Decode(a *Attrs) *Decl { return f(a) }

// Decl is what a node type declares about one configured node: its fields, its
// scheduling needs and how to build its runtime Node.
type Decl struct {
	// IO is the set of connection keys the type accepts.
	IO IOKeys
	// Inputs are fixed input fields in their order (call, exit, cache, …).
	// Empty for node-wise-only and user-defined inputs.
	Inputs []Field
	// Input is the type of the node-wise input when Inputs is empty
	// (TypeNone: the node has no inputs at all).
	Input Type
	// UserInputs lets `inputs` keys and `NODE.field` targets create input
	// fields of type any (jq, json_to_xml). They exclude the node-wise input.
	UserInputs bool
	// Outputs are named output fields in their order; the node-wise output is
	// then the object of all of them. Empty for node-wise-only outputs.
	Outputs []Field
	// Output is the node-wise output type when Outputs is empty (TypeNone: no
	// outputs at all).
	Output Type
	// Literal is the static node's values: the node-wise output is then a
	// literal object whose fields are typed by their values.
	Literal map[string]any
	// OutputContentType is the content type a string coming straight from this
	// node gets when written to a body (json_to_xml: application/xml).
	OutputContentType string
	// Async nodes (call, Redis cache) run on their own goroutine while the
	// scheduler continues; the others run inline.
	Async bool
	// Then and Else are a branch node's lists of node names.
	Then, Else []string
	// Mode, if set, is asked once connections are known whether any connection
	// feeds the node; it returns the phase constraints of that mode or an
	// error message for the attribute named by ModeField (property nodes).
	Mode func(inputConnected bool) (ModeRules, error)
	// ModeField is the attribute a Mode error is reported at.
	ModeField string
	// Build returns the runtime node. It runs after validation succeeded.
	Build func(b *BuildInfo) (Node, error)
}

// ModeRules are the phase constraints of a node in the mode it runs in.
type ModeRules struct {
	// ResponseOnly places the node in the response part.
	ResponseOnly bool
	// AccessOnly makes it a load error for the node to be in the response
	// part (setters of the proxy destination and the consumer).
	AccessOnly bool
}

// BuildInfo tells a node type what it needs to build its runtime node.
type BuildInfo struct {
	Name  string
	Index int
	// InputConnected reports whether any connection feeds the node.
	InputConnected bool
	// Connected tells, per fixed input field name, whether a connection
	// feeds it (call: a missing url attribute needs the url input).
	Connected map[string]bool
	// InputFields are the node's effective input fields in the order the
	// runtime passes them to Run: the fixed inputs, or the user-defined
	// inputs in byte order, or a single $self field for a node-wise input.
	InputFields []Field
	// InputContentTypes gives, per input field, the content type of a string
	// coming straight from its source (Decl.OutputContentType), or "".
	InputContentTypes []string
	// PluginID identifies the plugin instance (cache key namespacing).
	PluginID string
	// Resources are the decoded `resources` entries registered with the
	// Registry (e.g. "cache"), by name.
	Resources map[string]any
	// Recorder is the plan's Recorder (nil: none), for node types that
	// record more than their runs (call and cache nodes).
	Recorder Recorder
}

// Node is a compiled, immutable node; Run is called at most once per request
// and must be safe for concurrent use across requests.
//
// in holds the input values in BuildInfo.InputFields order (nil for an
// unconnected input). Run returns the outputs in Decl.Outputs order, or a
// single value for a node-wise output; it may return outputs together with an
// error (a call that got a non-2xx status), which traces show.
type Node interface {
	Run(ctx context.Context, env *Env, in []any) ([]any, error)
}

// NodeFunc adapts a function to the Node interface.
type NodeFunc func(ctx context.Context, env *Env, in []any) ([]any, error)

// Run calls f.
func (f NodeFunc) Run(ctx context.Context, env *Env, in []any) ([]any, error) {
	return f(ctx, env, in)
}

// ResourceDecoder decodes one entry of the configuration's `resources` object
// (e.g. `cache`), recording problems on a.
type ResourceDecoder func(a *Attrs) any

// Registry maps node type names to kinds and resource names to their
// decoders. Build it once at start-up; it is read-only afterwards and safe for
// concurrent use then.
type Registry struct {
	kinds     map[string]Kind
	resources map[string]ResourceDecoder
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{kinds: map[string]Kind{}, resources: map[string]ResourceDecoder{}}
}

// Register adds a node type. Registering a name twice replaces the kind.
func (r *Registry) Register(name string, k Kind) { r.kinds[name] = k }

// RegisterResource adds a decoder for `resources.<name>`.
func (r *Registry) RegisterResource(name string, d ResourceDecoder) { r.resources[name] = d }

// Kind returns the kind registered under name.
func (r *Registry) Kind(name string) (Kind, bool) {
	k, ok := r.kinds[name]
	return k, ok
}

// Types returns the registered type names in byte order.
func (r *Registry) Types() []string {
	names := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DecodeAttrs runs a kind's Decode on the attribute values of one node and
// returns its declaration and the located errors, unknown keys included.
// Node-type tests use it; loc is the node location (`nodes[0] "X" (jq)`).
func DecodeAttrs(loc string, values map[string]any, k Kind) (*Decl, []error) {
	var errs []error
	a := newAttrs(loc, "", values, &errs, nil)
	d := k.Decode(a)
	a.unknown(nil)
	return d, errs
}
