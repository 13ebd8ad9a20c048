package admin

import (
	"encoding/json"
	"strconv"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// ftype is what form coercion knows of a field's type (§4.2: "values are
// coerced by the schema"): Kong's type names, with element, value and field
// types for containers.
type ftype struct {
	kind   string // integer, number, boolean, string, array, set, map, record, foreign
	elem   *ftype // array, set
	values *ftype // map
	fields map[string]*ftype
}

var (
	tInt     = &ftype{kind: "integer"}
	tBool    = &ftype{kind: "boolean"}
	tStrings = &ftype{kind: "array", elem: &ftype{kind: "string"}}
)

// entityTypes are the non-string fields of each collection's entities.
var entityTypes = map[*collection]map[string]*ftype{
	services: {"port": tInt, "retries": tInt, "connect_timeout": tInt, "write_timeout": tInt,
		"read_timeout": tInt, "tls_verify": tBool, "tls_verify_depth": tInt, "enabled": tBool,
		"tags": tStrings, "ca_certificates": tStrings, "created_at": tInt},
	routes: {"protocols": tStrings, "methods": tStrings, "hosts": tStrings, "paths": tStrings,
		"headers": {kind: "map", values: tStrings}, "snis": tStrings, "https_redirect_status_code": tInt,
		"regex_priority": tInt, "strip_path": tBool, "preserve_host": tBool, "request_buffering": tBool,
		"response_buffering": tBool, "tags": tStrings, "created_at": tInt},
	consumers: {"tags": tStrings, "created_at": tInt},
	plugins:   {"protocols": tStrings, "enabled": tBool, "tags": tStrings, "created_at": tInt},
	upstreams: {"slots": tInt, "use_srv_name": tBool, "tags": tStrings, "created_at": tInt,
		"healthchecks": {kind: "record", fields: map[string]*ftype{"threshold": {kind: "number"}}}},
	targets:      {"weight": tInt, "tags": tStrings, "created_at": {kind: "number"}},
	certificates: {"snis": tStrings, "tags": tStrings, "created_at": tInt},
	snis:         {"tags": tStrings, "created_at": tInt},
	keyauths:     {"tags": tStrings, "created_at": tInt},
}

// coerce converts a form's string leaves to the collection's field types;
// a plugin's config follows its plugin's schema.
func coerce(c *collection, in map[string]any, schemas config.PluginSchemas) map[string]any {
	fields := entityTypes[c]
	if c == plugins {
		if name, ok := in["name"].(string); ok {
			if cfg := pluginConfigType(name); cfg != nil {
				fields = mergeFields(fields, map[string]*ftype{"config": cfg})
			}
		}
	}
	return coerceValue(&ftype{kind: "record", fields: fields}, in).(map[string]any)
}

func mergeFields(a, b map[string]*ftype) map[string]*ftype {
	out := make(map[string]*ftype, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func coerceValue(t *ftype, v any) any {
	if t == nil || v == nil {
		return v
	}
	switch t.kind {
	case "integer", "number":
		if s, ok := v.(string); ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				return f
			}
		}
	case "boolean":
		if s, ok := v.(string); ok {
			switch s {
			case "true":
				return true
			case "false":
				return false
			}
		}
	case "array", "set":
		switch x := v.(type) {
		case string:
			return []any{coerceValue(t.elem, x)}
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = coerceValue(t.elem, e)
			}
			return out
		}
	case "map":
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for k, e := range m {
				out[k] = coerceValue(t.values, e)
			}
			return out
		}
	case "record":
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for k, e := range m {
				out[k] = coerceValue(t.fields[k], e)
			}
			return out
		}
	}
	return v
}

// pluginConfigType reads a bundled plugin's config schema (Kong's record
// format) into an ftype; nil when the plugin has none.
func pluginConfigType(name string) *ftype {
	b, err := bundledSchemas.ReadFile("schemas/" + name + ".json")
	if err != nil {
		return nil
	}
	var raw map[string]any
	if json.Unmarshal(b, &raw) != nil {
		return nil
	}
	return kongType(raw)
}

// kongType converts one Kong schema attribute table.
func kongType(attrs map[string]any) *ftype {
	t := &ftype{}
	t.kind, _ = attrs["type"].(string)
	if e, ok := attrs["elements"].(map[string]any); ok {
		t.elem = kongType(e)
	}
	if e, ok := attrs["values"].(map[string]any); ok {
		t.values = kongType(e)
	}
	if fs, ok := attrs["fields"].([]any); ok {
		t.fields = map[string]*ftype{}
		for _, f := range fs {
			one, _ := f.(map[string]any)
			for name, a := range one {
				if am, ok := a.(map[string]any); ok {
					t.fields[name] = kongType(am)
				}
			}
		}
	}
	return t
}
