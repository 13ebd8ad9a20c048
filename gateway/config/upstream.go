package config

import (
	"slices"
	"strings"
)

// Upstream is a virtual host balancing over Targets (§3.6).
type Upstream struct {
	Algorithm              string       `json:"algorithm"`
	ClientCertificate      *ForeignKey  `json:"client_certificate"`
	CreatedAt              int64        `json:"created_at"`
	HashFallback           string       `json:"hash_fallback"`
	HashFallbackHeader     *string      `json:"hash_fallback_header"`
	HashFallbackQueryArg   *string      `json:"hash_fallback_query_arg"`
	HashFallbackURICapture *string      `json:"hash_fallback_uri_capture"`
	HashOn                 string       `json:"hash_on"`
	HashOnCookie           *string      `json:"hash_on_cookie"`
	HashOnCookiePath       string       `json:"hash_on_cookie_path"`
	HashOnHeader           *string      `json:"hash_on_header"`
	HashOnQueryArg         *string      `json:"hash_on_query_arg"`
	HashOnURICapture       *string      `json:"hash_on_uri_capture"`
	Healthchecks           Healthchecks `json:"healthchecks"`
	HostHeader             *string      `json:"host_header"`
	ID                     string       `json:"id"`
	Name                   string       `json:"name"`
	Slots                  int          `json:"slots"`
	Tags                   []string     `json:"tags"`
	UpdatedAt              int64        `json:"updated_at"`
	UseSRVName             bool         `json:"use_srv_name"`
}

// Healthchecks keeps Kong's structure so Kong files load; health checks are
// not provided, so every counter and interval must be 0.
type Healthchecks struct {
	Active    ActiveHealthcheck  `json:"active"`
	Passive   PassiveHealthcheck `json:"passive"`
	Threshold float64            `json:"threshold"`
}

// ActiveHealthcheck is Kong's healthchecks.active record.
type ActiveHealthcheck struct {
	Concurrency            int                 `json:"concurrency"`
	Headers                map[string][]string `json:"headers"`
	Healthy                ActiveHealthy       `json:"healthy"`
	HTTPPath               string              `json:"http_path"`
	HTTPSSNI               *string             `json:"https_sni"`
	HTTPSVerifyCertificate bool                `json:"https_verify_certificate"`
	Timeout                float64             `json:"timeout"`
	Type                   string              `json:"type"`
	Unhealthy              ActiveUnhealthy     `json:"unhealthy"`
}

// ActiveHealthy is Kong's healthchecks.active.healthy record.
type ActiveHealthy struct {
	HTTPStatuses []int   `json:"http_statuses"`
	Interval     float64 `json:"interval"`
	Successes    int     `json:"successes"`
}

// ActiveUnhealthy is Kong's healthchecks.active.unhealthy record.
type ActiveUnhealthy struct {
	HTTPFailures int     `json:"http_failures"`
	HTTPStatuses []int   `json:"http_statuses"`
	Interval     float64 `json:"interval"`
	TCPFailures  int     `json:"tcp_failures"`
	Timeouts     int     `json:"timeouts"`
}

// PassiveHealthcheck is Kong's healthchecks.passive record.
type PassiveHealthcheck struct {
	Healthy   PassiveHealthy   `json:"healthy"`
	Type      string           `json:"type"`
	Unhealthy PassiveUnhealthy `json:"unhealthy"`
}

// PassiveHealthy is Kong's healthchecks.passive.healthy record.
type PassiveHealthy struct {
	HTTPStatuses []int `json:"http_statuses"`
	Successes    int   `json:"successes"`
}

// PassiveUnhealthy is Kong's healthchecks.passive.unhealthy record.
type PassiveUnhealthy struct {
	HTTPFailures int   `json:"http_failures"`
	HTTPStatuses []int `json:"http_statuses"`
	TCPFailures  int   `json:"tcp_failures"`
	Timeouts     int   `json:"timeouts"`
}

// defaultHealthchecks are Kong's defaults.
func defaultHealthchecks() Healthchecks {
	return Healthchecks{
		Active: ActiveHealthcheck{
			Concurrency: 10, HTTPPath: "/", HTTPSVerifyCertificate: true, Timeout: 1, Type: "http",
			Healthy:   ActiveHealthy{HTTPStatuses: []int{200, 302}},
			Unhealthy: ActiveUnhealthy{HTTPStatuses: []int{429, 404, 500, 501, 502, 503, 504, 505}},
		},
		Passive: PassiveHealthcheck{
			Type: "http",
			Healthy: PassiveHealthy{HTTPStatuses: []int{200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
				300, 301, 302, 303, 304, 305, 306, 307, 308}},
			Unhealthy: PassiveUnhealthy{HTTPStatuses: []int{429, 500, 503}},
		},
	}
}

var hashModes = []string{"none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture"}

// DecodeUpstream decodes, defaults and validates an Upstream, applying Kong's
// input side effects between algorithm and hash_on.
func DecodeUpstream(in map[string]any) (Upstream, *FieldErrors) {
	u := Upstream{
		Algorithm: "round-robin", HashOn: "none", HashFallback: "none",
		HashOnCookiePath: "/", Slots: 10000, Healthchecks: defaultHealthchecks(),
	}
	errs := &FieldErrors{}
	r := newReader(in, errs)
	r.common(&u.ID, &u.CreatedAt, &u.Tags)
	r.timestamp("updated_at", &u.UpdatedAt)
	r.required("name", &u.Name)
	if u.Name != "" {
		if msg := checkUpstreamName(u.Name); msg != "" {
			errs.Field("name").Add(msg)
		}
	}
	r.enum("algorithm", &u.Algorithm, "consistent-hashing", "least-connections", "round-robin")
	r.enum("hash_on", &u.HashOn, hashModes...)
	r.enum("hash_fallback", &u.HashFallback, hashModes...)
	r.checkedPtr("hash_on_header", &u.HashOnHeader, checkHeaderName)
	r.checkedPtr("hash_fallback_header", &u.HashFallbackHeader, checkHeaderName)
	r.strPtr("hash_on_cookie", &u.HashOnCookie)
	if r.str("hash_on_cookie_path", &u.HashOnCookiePath) {
		if msg := checkServicePath(u.HashOnCookiePath); msg != "" {
			errs.Field("hash_on_cookie_path").Add(msg)
		}
	}
	r.strPtr("hash_on_query_arg", &u.HashOnQueryArg)
	r.strPtr("hash_fallback_query_arg", &u.HashFallbackQueryArg)
	r.strPtr("hash_on_uri_capture", &u.HashOnURICapture)
	r.strPtr("hash_fallback_uri_capture", &u.HashFallbackURICapture)
	r.integer("slots", &u.Slots, 10, 65536)
	r.checkedPtr("host_header", &u.HostHeader, checkHostOptionalPort)
	r.foreign("client_certificate", "id", &u.ClientCertificate)
	r.boolean("use_srv_name", &u.UseSRVName)
	if hc, ok := r.record("healthchecks"); ok {
		decodeHealthchecks(hc, &u.Healthchecks, errs.Field("healthchecks"))
	}
	r.done()

	// Kong's input side effects (§3.6).
	if u.Algorithm == "least-connections" {
		u.HashOn = "none"
	} else if u.HashOn != "none" {
		u.Algorithm = "consistent-hashing"
	} else {
		u.Algorithm = "round-robin"
	}
	u.validate(errs)
	return u, errs
}

// checkedPtr reads an optional string that check must accept.
func (r *reader) checkedPtr(k string, dst **string, check func(string) string) {
	var s string
	if !r.str(k, &s) {
		return
	}
	if msg := check(s); msg != "" {
		r.errs.Field(k).Add(msg)
		return
	}
	*dst = &s
}

func (u *Upstream) validate(errs *FieldErrors) {
	if u.UseSRVName {
		errs.Field("use_srv_name").Add("value must be false")
	}
	if errs.anyField("hash_on", "hash_fallback") {
		return
	}
	need := func(cond bool, field string, v *string) {
		if cond && v == nil && errs.children[field].Empty() {
			errs.Field(field).Add("required field missing")
		}
	}
	need(u.HashOn == "header", "hash_on_header", u.HashOnHeader)
	need(u.HashFallback == "header", "hash_fallback_header", u.HashFallbackHeader)
	need(u.HashOn == "cookie" || u.HashFallback == "cookie", "hash_on_cookie", u.HashOnCookie)
	need(u.HashOn == "query_arg", "hash_on_query_arg", u.HashOnQueryArg)
	need(u.HashFallback == "query_arg", "hash_fallback_query_arg", u.HashFallbackQueryArg)
	need(u.HashOn == "uri_capture", "hash_on_uri_capture", u.HashOnURICapture)
	need(u.HashFallback == "uri_capture", "hash_fallback_uri_capture", u.HashFallbackURICapture)

	// hash_fallback is "none" when hashing on nothing or on a cookie, and
	// differs from hash_on except for the modes that take a name.
	switch {
	case u.HashOn == "none" || u.HashOn == "cookie":
		if u.HashFallback != "none" {
			errs.Field("hash_fallback").Add("expected one of: none")
		}
	case u.HashOn == u.HashFallback && !slices.Contains([]string{"header", "query_arg", "uri_capture"}, u.HashOn):
		allowed := slices.DeleteFunc(slices.Clone(hashModes), func(m string) bool { return m == u.HashOn })
		errs.Field("hash_fallback").Add("expected one of: " + strings.Join(allowed, ", "))
	}
	distinct := func(a, b string, x, y *string) {
		if x != nil && y != nil && *x == *y {
			errs.AddEntity("values of these fields must be distinct: '" + a + "', '" + b + "'")
		}
	}
	distinct("hash_on_header", "hash_fallback_header", u.HashOnHeader, u.HashFallbackHeader)
	distinct("hash_on_query_arg", "hash_fallback_query_arg", u.HashOnQueryArg, u.HashFallbackQueryArg)
	distinct("hash_on_uri_capture", "hash_fallback_uri_capture", u.HashOnURICapture, u.HashFallbackURICapture)
}

const notSupported = "health checks are not supported; set it to 0"

// zero reads a number that must be 0.
func (r *reader) zero(k string) {
	v, ok := r.get(k)
	if !ok {
		return
	}
	f, ok := toFloat(v)
	switch {
	case !ok:
		r.errs.Field(k).Add("expected a number")
	case f != 0:
		r.errs.Field(k).Add(notSupported)
	}
}

func (r *reader) number(k string, dst *float64, lo, hi float64) {
	v, ok := r.get(k)
	if !ok {
		return
	}
	f, ok := toFloat(v)
	switch {
	case !ok:
		r.errs.Field(k).Add("expected a number")
	case f < lo || f > hi:
		r.errs.Field(k).Addf("value should be between %g and %g", lo, hi)
	default:
		*dst = f
	}
}

// statuses reads an array of HTTP status codes.
func (r *reader) statuses(k string, dst *[]int) {
	v, ok := r.get(k)
	if !ok {
		return
	}
	arr, ok := v.([]any)
	if !ok {
		r.errs.Field(k).Add("expected an array")
		return
	}
	out := make([]int, 0, len(arr))
	for i, e := range arr {
		n, ok := toInt(e)
		switch {
		case !ok:
			r.errs.Field(k).Index(i).Add("expected an integer")
		case n < 100 || n > 999:
			r.errs.Field(k).Index(i).Add("value should be between 100 and 999")
		default:
			out = append(out, n)
		}
	}
	*dst = out
}

// sub reads a nested record with its own reader.
func (r *reader) sub(k string, fn func(*reader)) {
	m, ok := r.record(k)
	if !ok {
		return
	}
	sr := newReader(m, r.errs.Field(k))
	fn(sr)
	sr.done()
}

func decodeHealthchecks(in map[string]any, hc *Healthchecks, errs *FieldErrors) {
	r := newReader(in, errs)
	r.zero("threshold")
	r.sub("active", func(r *reader) {
		a := &hc.Active
		r.integer("concurrency", &a.Concurrency, 1, 2147483647)
		r.headers(&a.Headers)
		r.str("http_path", &a.HTTPPath)
		r.strPtr("https_sni", &a.HTTPSSNI)
		r.boolean("https_verify_certificate", &a.HTTPSVerifyCertificate)
		r.number("timeout", &a.Timeout, 0, 65535)
		r.enum("type", &a.Type, "tcp", "http", "https", "grpc", "grpcs")
		r.sub("healthy", func(r *reader) {
			r.statuses("http_statuses", &a.Healthy.HTTPStatuses)
			r.zero("interval")
			r.zero("successes")
		})
		r.sub("unhealthy", func(r *reader) {
			r.statuses("http_statuses", &a.Unhealthy.HTTPStatuses)
			r.zero("interval")
			r.zero("http_failures")
			r.zero("tcp_failures")
			r.zero("timeouts")
		})
	})
	r.sub("passive", func(r *reader) {
		p := &hc.Passive
		r.enum("type", &p.Type, "tcp", "http", "https", "grpc", "grpcs")
		r.sub("healthy", func(r *reader) {
			r.statuses("http_statuses", &p.Healthy.HTTPStatuses)
			r.zero("successes")
		})
		r.sub("unhealthy", func(r *reader) {
			r.statuses("http_statuses", &p.Unhealthy.HTTPStatuses)
			r.zero("http_failures")
			r.zero("tcp_failures")
			r.zero("timeouts")
		})
	})
	r.done()
}
