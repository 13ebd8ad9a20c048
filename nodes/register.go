package nodes

import "github.com/datakit-gateway/datakit/engine"

// Register adds the node types to reg, built with deps.
func Register(reg *engine.Registry, deps Deps) {
	deps = deps.withDefaults()
	reg.Register("static", staticKind())
	reg.Register("jq", jqKind(deps))
	reg.Register("call", callKind(deps))
	reg.Register("exit", exitKind())
	reg.Register("property", propertyKind())
}
