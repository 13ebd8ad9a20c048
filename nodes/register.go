package nodes

import "github.com/datakit-gateway/datakit/engine"

// Register adds the node types and the `cache` resource to reg, built with
// deps. Without deps.Caches the registry gets cache stores of its own, whose
// Redis clients are never closed: long-running processes pass theirs.
func Register(reg *engine.Registry, deps Deps) {
	deps = deps.withDefaults()
	if deps.Caches == nil {
		deps.Caches = NewCacheStores()
	}
	reg.Register("static", staticKind())
	reg.Register("jq", jqKind(deps))
	reg.Register("call", callKind(deps))
	reg.Register("exit", exitKind())
	reg.Register("property", propertyKind())
	reg.Register("branch", branchKind())
	reg.Register("cache", cacheKind(deps))
	reg.RegisterResource("cache", decodeCacheResource)
	reg.Register("xml_to_json", xmlToJSONKind())
	reg.Register("json_to_xml", jsonToXMLKind())
	reg.Register("jwt_decode", jwtDecodeKind())
	reg.Register("jwt_sign", jwtSignKind(deps))
	reg.Register("jwt_verify", jwtVerifyKind(deps))
}
