package config

import (
	"slices"
	"strings"
)

// Route matches requests to a Service (§3.3).
type Route struct {
	CreatedAt int64 `json:"created_at"`
	// Destinations must be null (stream routing is not provided).
	Destinations []any `json:"destinations"`
	// Headers maps a header name to the values any of which matches.
	Headers                 map[string][]string `json:"headers"`
	Hosts                   []string            `json:"hosts"`
	HTTPSRedirectStatusCode int                 `json:"https_redirect_status_code"`
	ID                      string              `json:"id"`
	Methods                 []string            `json:"methods"`
	Name                    *string             `json:"name"`
	// PathHandling "v1" behaves as "v0" (traditional_compatible).
	PathHandling string `json:"path_handling"`
	// Paths are normalized prefixes, or '~' and a regex.
	Paths             []string `json:"paths"`
	PreserveHost      bool     `json:"preserve_host"`
	Protocols         []string `json:"protocols"`
	RegexPriority     int      `json:"regex_priority"`
	RequestBuffering  bool     `json:"request_buffering"`
	ResponseBuffering bool     `json:"response_buffering"`
	// Service nil is a route without Service (§7.8).
	Service *ForeignKey `json:"service"`
	SNIs    []string    `json:"snis"`
	// Sources must be null (stream routing is not provided).
	Sources   []any    `json:"sources"`
	StripPath bool     `json:"strip_path"`
	Tags      []string `json:"tags"`
	UpdatedAt int64    `json:"updated_at"`
}

// DecodeRoute decodes, defaults and validates a Route from plain values.
func DecodeRoute(in map[string]any) (Route, *FieldErrors) {
	rt := Route{
		Protocols: []string{"http", "https"}, HTTPSRedirectStatusCode: 426,
		StripPath: true, PathHandling: "v0", RequestBuffering: true, ResponseBuffering: true,
	}
	errs := &FieldErrors{}
	r := newReader(in, errs)
	r.common(&rt.ID, &rt.CreatedAt, &rt.Tags)
	r.timestamp("updated_at", &rt.UpdatedAt)
	r.name("name", &rt.Name)
	if r.strings("protocols", &rt.Protocols, true, oneOf("http", "https")) && len(rt.Protocols) == 0 {
		errs.Field("protocols").Add("length must be at least 1")
	}
	r.strings("methods", &rt.Methods, true, checkMethod)
	r.strings("hosts", &rt.Hosts, false, checkRouteHost)
	r.strings("paths", &rt.Paths, false, checkRoutePath)
	r.headers(&rt.Headers)
	r.strings("snis", &rt.SNIs, true, checkSNIName)
	r.null("sources")
	r.null("destinations")
	var code int
	if r.integer("https_redirect_status_code", &code, 0, 999) {
		if !slices.Contains([]int{426, 301, 302, 307, 308}, code) {
			errs.Field("https_redirect_status_code").Add("expected one of: 426, 301, 302, 307, 308")
		} else {
			rt.HTTPSRedirectStatusCode = code
		}
	}
	r.integer("regex_priority", &rt.RegexPriority, -(1 << 53), 1<<53)
	r.boolean("strip_path", &rt.StripPath)
	r.enum("path_handling", &rt.PathHandling, "v0", "v1")
	r.boolean("preserve_host", &rt.PreserveHost)
	r.boolean("request_buffering", &rt.RequestBuffering)
	r.boolean("response_buffering", &rt.ResponseBuffering)
	r.foreign("service", "name", &rt.Service)
	r.done()

	rt.validate(errs)
	return rt, errs
}

func checkMethod(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return "invalid value: " + s
		}
	}
	return ""
}

// checkHeaderName allows the characters Kong's header_name typedef does.
func checkHeaderName(s string) string {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' && s[i] != '_' {
			return "bad header name '" + s + "', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
		}
	}
	return ""
}

// headers reads the name → values map; names are checked like Kong's
// header_name and "host" belongs in hosts.
func (r *reader) headers(dst *map[string][]string) {
	m, ok := r.record("headers")
	if !ok {
		return
	}
	errs := r.errs.Field("headers")
	out := make(map[string][]string, len(m))
	for _, name := range sortedKeys(m) {
		if msg := checkHeaderName(name); msg != "" {
			errs.Field(name).Add(msg)
			continue
		}
		if strings.EqualFold(name, "host") {
			errs.Add("cannot contain 'host' header, which must be specified in the 'hosts' attribute")
			continue
		}
		vals, ok := stringList(m[name], false, nil, errs.Field(name))
		if !ok {
			continue
		}
		if len(vals) == 0 {
			errs.Field(name).Add("length must be at least 1")
			continue
		}
		out[name] = vals
	}
	*dst = out
}

func (rt *Route) validate(errs *FieldErrors) {
	// As Kong, an entity check is skipped when one of its fields is invalid.
	if errs.anyField("protocols", "methods", "hosts", "headers", "paths", "snis") {
		return
	}
	https := slices.Contains(rt.Protocols, "https")
	set := len(rt.Methods) > 0 || len(rt.Hosts) > 0 || len(rt.Headers) > 0 || len(rt.Paths) > 0
	switch {
	case https && !set && len(rt.SNIs) == 0:
		errs.AddEntity("must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'")
	case !https && !set:
		errs.AddEntity("must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'")
	}
	if len(rt.SNIs) > 0 && !https {
		errs.Field("snis").Add("'snis' can only be set when 'protocols' is 'https'")
	}
}
