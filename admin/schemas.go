package admin

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// Entity schemas (GET /schemas/{entity}, §4.9) are derived, not retyped:
// the fields and their types come from the entity structs of package
// config, defaults and required fields from decoding an empty entity, and
// the checks Kong's record format spells as attributes (between, one_of,
// eq, set vs array) from the messages the decoders give probe values. Only
// the entity-level checks below, and naming conventions (id, timestamps,
// endpoint keys, foreign keys), are written here. decK fills its defaults
// from these documents (go-database-reconciler's Defaulter calls
// kong.FillEntityDefaults on /schemas/services, routes, upstreams and
// targets), so what they say must be what the decoders do.

// entityStructs maps each collection to the struct its decoder returns.
var entityStructs = map[*collection]reflect.Type{
	services:     reflect.TypeFor[config.Service](),
	routes:       reflect.TypeFor[config.Route](),
	consumers:    reflect.TypeFor[config.Consumer](),
	plugins:      reflect.TypeFor[config.Plugin](),
	upstreams:    reflect.TypeFor[config.Upstream](),
	targets:      reflect.TypeFor[config.Target](),
	certificates: reflect.TypeFor[config.Certificate](),
	snis:         reflect.TypeFor[config.SNI](),
	keyauths:     reflect.TypeFor[config.KeyauthCredential](),
}

// foreignRefs names the collection a foreign key field references.
var foreignRefs = map[string]string{
	"service": "services", "route": "routes", "consumer": "consumers", "upstream": "upstreams",
	"certificate": "certificates", "client_certificate": "certificates",
}

// entityChecks are Kong's entity-level checks (§3), in Kong's names; a check
// enforced in code only is a custom_entity_check naming its fields.
var entityChecks = map[*collection][]any{
	services: {
		conditionalNull("client_certificate"), conditionalNull("tls_verify"), conditionalNull("tls_verify_depth"),
	},
	routes: {
		map[string]any{"conditional_at_least_one_of": map[string]any{
			"if_field":             "protocols",
			"if_match":             map[string]any{"elements": map[string]any{"type": "string", "not_one_of": []string{"https"}}},
			"then_at_least_one_of": []string{"methods", "hosts", "headers", "paths"},
			"then_err":             "must set one of %s when 'protocols' is 'http'",
		}},
		map[string]any{"conditional_at_least_one_of": map[string]any{
			"if_field":             "protocols",
			"if_match":             map[string]any{"contains": "https"},
			"then_at_least_one_of": []string{"methods", "hosts", "headers", "paths", "snis"},
			"then_err":             "must set one of %s when 'protocols' is 'https'",
		}},
		customCheck("paths"), customCheck("snis", "protocols"),
	},
	consumers: {map[string]any{"at_least_one_of": []string{"custom_id", "username"}}},
	plugins:   {customCheck("name", "config", "route", "service", "consumer")},
	upstreams: {
		requiredWhen("hash_on", "header", "hash_on_header"), requiredWhen("hash_fallback", "header", "hash_fallback_header"),
		requiredWhen("hash_on", "cookie", "hash_on_cookie"), requiredWhen("hash_fallback", "cookie", "hash_on_cookie"),
		requiredWhen("hash_on", "query_arg", "hash_on_query_arg"), requiredWhen("hash_fallback", "query_arg", "hash_fallback_query_arg"),
		requiredWhen("hash_on", "uri_capture", "hash_on_uri_capture"), requiredWhen("hash_fallback", "uri_capture", "hash_fallback_uri_capture"),
		customCheck("hash_on", "hash_fallback", "hash_on_header", "hash_fallback_header"),
	},
	certificates: {
		map[string]any{"mutually_required": []string{"cert_alt", "key_alt"}},
		customCheck("cert", "key", "cert_alt", "key_alt"),
	},
}

func conditionalNull(field string) map[string]any {
	return map[string]any{"conditional": map[string]any{
		"if_field": "protocol", "if_match": map[string]any{"not_one_of": []string{"https"}},
		"then_field": field, "then_match": map[string]any{"eq": nil},
	}}
}

func requiredWhen(field, value, then string) map[string]any {
	return map[string]any{"conditional": map[string]any{
		"if_field": field, "if_match": map[string]any{"match": "^" + value + "$"},
		"then_field": then, "then_match": map[string]any{"required": true},
	}}
}

func customCheck(fields ...string) map[string]any {
	return map[string]any{"custom_entity_check": map[string]any{"field_sources": fields}}
}

// schemaFor is one collection's schema document.
type schemaFor struct {
	c      *collection
	decode func(map[string]any) *config.FieldErrors
	// empty is the JSON of the entity decoded from {}: its defaults.
	empty map[string]any
	// required are the fields decoding {} reports missing.
	required map[string]bool
}

// entitySchema renders a collection's schema in Kong's record format.
func entitySchema(c *collection, ps config.PluginSchemas) map[string]any {
	s := &schemaFor{c: c, required: map[string]bool{}}
	s.decode = func(in map[string]any) *config.FieldErrors {
		_, fe := decoders[c](in, ps)
		return fe
	}
	ent, fe := decoders[c](map[string]any{}, ps)
	b, _ := json.Marshal(ent)
	_ = json.Unmarshal(b, &s.empty)
	for _, f := range flatMessages(fe) {
		if f.Message == "required field missing" {
			s.required[f.Path] = true
		}
	}
	checks := entityChecks[c]
	if checks == nil {
		checks = []any{}
	}
	return map[string]any{
		"fields":        s.fields(entityStructs[c], nil),
		"entity_checks": checks,
	}
}

func flatMessages(fe *config.FieldErrors) []config.FieldError {
	if fe == nil {
		return nil
	}
	return fe.Flatten()
}

// fields renders the fields of a struct: id and the timestamps first (as
// Kong declares them), then the rest in the struct's (alphabetical) order.
func (s *schemaFor) fields(t reflect.Type, path []string) []map[string]any {
	type field struct {
		name string
		typ  reflect.Type
	}
	var first, rest []field
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		f := field{name, sf.Type}
		if len(path) == 0 && (name == "id" || name == "created_at" || name == "updated_at") {
			first = append(first, f)
			continue
		}
		rest = append(rest, f)
	}
	slices.SortStableFunc(first, func(a, b field) int {
		order := map[string]int{"id": 0, "created_at": 1, "updated_at": 2}
		return order[a.name] - order[b.name]
	})
	out := make([]map[string]any, 0, len(first)+len(rest))
	for _, f := range append(first, rest...) {
		out = append(out, map[string]any{f.name: s.attrs(f.typ, append(slices.Clone(path), f.name))})
	}
	return out
}

var (
	foreignKeyType = reflect.TypeFor[*config.ForeignKey]()
	recordType     = reflect.TypeFor[map[string]any]()
)

// attrs renders one field's attribute table.
func (s *schemaFor) attrs(t reflect.Type, path []string) map[string]any {
	name := path[len(path)-1]
	top := len(path) == 1
	a := map[string]any{}
	switch {
	case t == foreignKeyType:
		a["type"] = "foreign"
		a["reference"] = foreignRefs[name]
	case t == recordType:
		a["type"] = "record"
		a["abstract"] = true
	case t.Kind() == reflect.Struct:
		a["type"] = "record"
		a["required"] = true
		a["fields"] = s.fields(t, path)
		return a
	case t.Kind() == reflect.Map:
		a["type"] = "map"
		a["keys"] = map[string]any{"type": "string"}
		a["values"] = map[string]any{"type": "array", "elements": map[string]any{"type": kongScalar(t.Elem().Elem())}}
	case t.Kind() == reflect.Slice:
		s.sequence(t, path, a)
	default:
		a["type"] = kongScalar(t)
	}
	switch {
	case top && name == "id":
		a["uuid"], a["auto"] = true, true
	case top && (name == "created_at" || name == "updated_at"):
		a["timestamp"], a["auto"] = true, true
	case a["type"] != "foreign" && a["type"] != "record" && a["type"] != "map" && t.Kind() != reflect.Slice:
		s.probeScalar(path, a)
	}
	// A Target's key is unique per Upstream only.
	if top && (name == s.c.key && !s.c.nestedOnly || s.c == consumers && name == "custom_id") {
		a["unique"] = true
		if s.c == keyauths {
			a["auto"] = true // generated when absent (§3.10)
		}
	}
	if s.required[strings.Join(path, ".")] {
		a["required"] = true
	} else if d, ok := s.defaultAt(path); ok && a["auto"] == nil {
		a["default"] = d
	}
	return a
}

// sequence fills the attributes of an array or set field.
func (s *schemaFor) sequence(t reflect.Type, path []string, a map[string]any) {
	a["type"] = "array"
	if msgs := s.probe(path, 1); slices.Contains(msgs, "expected a set") {
		a["type"] = "set"
	}
	if slices.Contains(s.probe(path, []any{"x"}), "value must be null") {
		a["eq"] = nil
	}
	elem := map[string]any{}
	switch t.Elem().Kind() {
	case reflect.String:
		elem["type"] = "string"
		s.probeElement(path, "\x00", elem)
	case reflect.Int:
		elem["type"] = "integer"
		s.probeElement(path, -1e15, elem)
	default:
		elem["type"] = "record"
	}
	a["elements"] = elem
}

func kongScalar(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64:
		return "integer"
	case reflect.Float64:
		return "number"
	}
	return "string"
}

// probeScalar reads between, one_of and eq from the decoder's answer to a
// value out of every range.
func (s *schemaFor) probeScalar(path []string, a map[string]any) {
	switch a["type"] {
	case "integer", "number":
		// Out of every range, then within it: an enumeration of numbers
		// (https_redirect_status_code) answers the second.
		constraint(s.probe(path, -1e15), a)
		constraint(s.probe(path, 1), a)
	case "string":
		constraint(s.probe(path, "\x00"), a)
	}
}

// probeElement reads an array element's constraints.
func (s *schemaFor) probeElement(path []string, v any, elem map[string]any) {
	constraint(s.probe(append(slices.Clone(path), "1"), []any{v}), elem)
}

// constraint turns Kong's validation messages back into attributes.
func constraint(msgs []string, a map[string]any) {
	for _, m := range msgs {
		switch {
		case strings.HasPrefix(m, "value should be between "):
			lo, hi, ok := strings.Cut(strings.TrimPrefix(m, "value should be between "), " and ")
			if !ok {
				continue
			}
			a["between"] = []any{number(lo), number(hi)}
		case strings.HasPrefix(m, "expected one of: "):
			var vals []any
			for v := range strings.SplitSeq(strings.TrimPrefix(m, "expected one of: "), ", ") {
				if a["type"] == "integer" {
					vals = append(vals, number(v))
				} else {
					vals = append(vals, v)
				}
			}
			a["one_of"] = vals
		case m == "value must be null":
			a["eq"] = nil
		case strings.HasPrefix(m, "health checks are not supported"):
			a["eq"] = 0
		}
	}
}

func number(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	return s
}

// probe decodes an entity holding v at path (probes of a sequence element
// end in its 1-based index, which is not part of the input) and returns the
// messages reported at that path.
func (s *schemaFor) probe(path []string, v any) []string {
	inPath := path
	if n := len(path); n > 0 {
		if _, err := strconv.Atoi(path[n-1]); err == nil {
			inPath = path[:n-1]
		}
	}
	in := map[string]any{}
	cur := in
	for i, k := range inPath {
		if i == len(inPath)-1 {
			cur[k] = v
			break
		}
		next := map[string]any{}
		cur[k] = next
		cur = next
	}
	want := strings.Join(path, ".")
	var out []string
	for _, f := range flatMessages(s.decode(in)) {
		if f.Path == want {
			out = append(out, f.Message)
		}
	}
	return out
}

// defaultAt reads the default at path from the entity decoded from {}:
// null, "" and auto fields have none.
func (s *schemaFor) defaultAt(path []string) (any, bool) {
	var cur any = s.empty
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur = m[k]
	}
	if cur == nil || cur == "" {
		return nil, false
	}
	return cur, true
}

// schemaCollection finds a collection by its schema name ("services",
// "keyauth_credentials").
func schemaCollection(name string) *collection {
	for _, c := range collections {
		if c.entity == name {
			return c
		}
	}
	return nil
}

// entitySchemaHandler serves GET /schemas/{entity}.
func (a *api) entitySchemaHandler(w http.ResponseWriter, r *http.Request) {
	name := param(r, "entity")
	c := schemaCollection(name)
	if c == nil {
		a.fail(w, r, &Error{Status: http.StatusNotFound, Message: "No entity named '" + name + "'"})
		return
	}
	writeJSON(w, r, http.StatusOK, entitySchema(c, a.schemas()))
}

// validateEntity serves POST /schemas/{entity}/validate: the body is
// checked as a create, foreign keys unresolved, and nothing is stored.
func (a *api) validateEntity(w http.ResponseWriter, r *http.Request) {
	name := param(r, "entity")
	c := schemaCollection(name)
	if c == nil {
		a.fail(w, r, &Error{Status: http.StatusNotFound, Message: "No entity named '" + name + "'"})
		return
	}
	in, err := a.decodeEntity(r, c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if _, err := a.decode(c, in); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]string{"message": "schema validation successful"})
}
