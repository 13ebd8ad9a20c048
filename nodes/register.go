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
	reg.Register("xml_to_json", xmlToJSONKind())
	reg.Register("json_to_xml", jsonToXMLKind())
	reg.Register("jwt_decode", jwtDecodeKind())
	reg.Register("jwt_sign", jwtSignKind(deps))
	reg.Register("jwt_verify", jwtVerifyKind(deps))
}
