// Package keyauth is the key-auth plugin (gateway.md §9.6): it
// authenticates a consumer from an API key in a header, the query string or
// the body, as Kong's key-auth does.
package keyauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"slices"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
)

// Name and Priority of the plugin.
const (
	Name     = "key-auth"
	Priority = 1250
)

// Plugin is the key-auth plugin.
type Plugin struct{ version string }

var _ gateway.Plugin = (*Plugin)(nil)

// New returns the plugin.
func New(version string) *Plugin { return &Plugin{version: version} }

func (p *Plugin) Name() string    { return Name }
func (p *Plugin) Priority() int   { return Priority }
func (p *Plugin) Version() string { return p.version }

// Schema forbids consumer-scoped instances, as Kong does.
func (p *Plugin) Schema() config.PluginSchema { return config.PluginSchema{NoConsumer: true} }

// settings is a validated configuration.
type settings struct {
	KeyNames        []string `json:"key_names"`
	HideCredentials bool     `json:"hide_credentials"`
	Anonymous       *string  `json:"anonymous"`
	KeyInHeader     bool     `json:"key_in_header"`
	KeyInQuery      bool     `json:"key_in_query"`
	KeyInBody       bool     `json:"key_in_body"`
	RunOnPreflight  bool     `json:"run_on_preflight"`
	Realm           *string  `json:"realm"`
}

var keyNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// decode reads a configuration with its defaults; problems are Kong's
// messages under config.
func decode(in map[string]any) (settings, *config.FieldErrors) {
	s := settings{KeyNames: []string{"apikey"}, KeyInHeader: true, KeyInQuery: true, RunOnPreflight: true}
	errs := &config.FieldErrors{}
	for _, k := range slices.Sorted(maps.Keys(in)) {
		v := in[k]
		if v == nil {
			continue
		}
		switch k {
		case "key_names":
			arr, ok := v.([]any)
			if !ok || len(arr) == 0 {
				errs.Field(k).Add("expected an array with at least 1 element")
				continue
			}
			s.KeyNames = s.KeyNames[:0]
			for i, e := range arr {
				name, ok := e.(string)
				switch {
				case !ok:
					errs.Field(k).Index(i).Add("expected a string")
				case !keyNameRE.MatchString(name):
					errs.Field(k).Index(i).Addf("bad header name '%s', allowed characters are A-Z, a-z, 0-9, '_', and '-'", name)
				default:
					s.KeyNames = append(s.KeyNames, name)
				}
			}
		case "hide_credentials", "key_in_header", "key_in_query", "key_in_body", "run_on_preflight":
			b, ok := v.(bool)
			if !ok {
				errs.Field(k).Add("expected a boolean")
				continue
			}
			switch k {
			case "hide_credentials":
				s.HideCredentials = b
			case "key_in_header":
				s.KeyInHeader = b
			case "key_in_query":
				s.KeyInQuery = b
			case "key_in_body":
				s.KeyInBody = b
			default:
				s.RunOnPreflight = b
			}
		case "anonymous", "realm":
			str, ok := v.(string)
			if !ok {
				errs.Field(k).Add("expected a string")
				continue
			}
			if k == "anonymous" {
				s.Anonymous = &str
			} else {
				s.Realm = &str
			}
		default:
			errs.Field(k).Add("unknown field")
		}
	}
	return s, errs
}

// Compile validates the configuration.
func (p *Plugin) Compile(_ context.Context, cfg config.Plugin, _ gateway.CompileEnv) (gateway.Instance, error) {
	s, errs := decode(cfg.Config)
	if !errs.Empty() {
		return nil, errs
	}
	return &instance{s: s}, nil
}

type instance struct{ s settings }

var (
	_ gateway.AccessHandler = (*instance)(nil)
	_ gateway.BodyNeeder    = (*instance)(nil)
)

// Config is the configuration with its defaults, as stored.
func (in *instance) Config() map[string]any {
	b, _ := json.Marshal(in.s)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// NeedsRequestBody: keys in the body need it buffered.
func (in *instance) NeedsRequestBody() bool { return in.s.KeyInBody }

// errUnauthorized builds a 401 with WWW-Authenticate.
func (in *instance) unauthorized(msg string) error {
	challenge := "Key"
	if in.s.Realm != nil {
		challenge = fmt.Sprintf("Key realm=%q", *in.s.Realm)
	}
	return &gateway.HTTPError{Status: http.StatusUnauthorized, Message: msg,
		Header: http.Header{"Www-Authenticate": {challenge}}}
}

// Access authenticates the request (gateway.md §9.6).
func (in *instance) Access(_ context.Context, ex *gateway.Exchange) error {
	r := ex.Request()
	if r.Method == http.MethodOptions && !in.s.RunOnPreflight {
		return nil
	}
	key, where, name, err := in.findKey(ex)
	if err != nil {
		return err
	}
	if key == "" {
		return in.fail(ex, "No API key found in request")
	}
	cred, consumer, ok := ex.FindCredential(key)
	if !ok {
		return in.fail(ex, "Unauthorized")
	}
	if in.s.HideCredentials {
		in.hide(ex, where, name)
	}
	ex.Authenticate(consumer, cred)
	setConsumerHeaders(ex, consumer, cred.ID)
	ex.ServiceRequestHeader().Del("X-Anonymous-Consumer")
	return nil
}

// fail answers 401, unless an anonymous consumer is configured.
func (in *instance) fail(ex *gateway.Exchange, msg string) error {
	if in.s.Anonymous == nil {
		return in.unauthorized(msg)
	}
	if ex.Consumer() != nil {
		return nil // another plugin authenticated the request
	}
	anon := *in.s.Anonymous
	c, err := ex.FindConsumer(anon, "", "")
	if err != nil {
		c, err = ex.FindConsumer("", anon, "")
	}
	if err != nil {
		ex.Logger().Error("anonymous consumer is configured but doesn't exist", "anonymous", anon)
		return &gateway.HTTPError{Status: http.StatusInternalServerError,
			Message: fmt.Sprintf("anonymous consumer %s is configured but doesn't exist", anon)}
	}
	ex.Authenticate(c, nil)
	setConsumerHeaders(ex, c, "")
	ex.ServiceRequestHeader().Set("X-Anonymous-Consumer", "true")
	return nil
}

func setConsumerHeaders(ex *gateway.Exchange, c *config.Consumer, credentialID string) {
	h := ex.ServiceRequestHeader()
	set := func(name string, v *string) {
		if v == nil {
			h.Del(name)
			return
		}
		h.Set(name, *v)
	}
	id := c.ID
	set("X-Consumer-Id", &id)
	set("X-Consumer-Custom-Id", c.CustomID)
	set("X-Consumer-Username", c.Username)
	if credentialID != "" {
		h.Set("X-Credential-Identifier", credentialID)
	} else {
		h.Del("X-Credential-Identifier")
	}
}

// Where a key was found.
const (
	inHeader = iota + 1
	inQuery
	inBody
)

// findKey looks for the first configured name in the header, the query,
// then the body; a name given twice is an error.
func (in *instance) findKey(ex *gateway.Exchange) (key string, where int, name string, err error) {
	r := ex.Request()
	var query url.Values
	if in.s.KeyInQuery {
		query, _ = url.ParseQuery(r.URL.RawQuery)
	}
	var body map[string][]string
	if in.s.KeyInBody {
		body = readBodyFields(ex)
	}
	for _, n := range in.s.KeyNames {
		for _, src := range []struct {
			on    bool
			where int
			vals  []string
		}{
			{in.s.KeyInHeader, inHeader, r.Header.Values(n)},
			{in.s.KeyInQuery, inQuery, query[n]},
			{in.s.KeyInBody, inBody, body[n]},
		} {
			if !src.on || len(src.vals) == 0 {
				continue
			}
			if len(src.vals) > 1 {
				return "", 0, "", in.unauthorized("Duplicate API key found")
			}
			return src.vals[0], src.where, n, nil
		}
	}
	return "", 0, "", nil
}

// readBodyFields reads a JSON object, form or multipart body into string
// fields; a body that does not parse has no fields.
func readBodyFields(ex *gateway.Exchange) map[string][]string {
	b, err := ex.ReadBody()
	if err != nil || len(b) == 0 {
		return nil
	}
	mt, params, _ := mime.ParseMediaType(ex.Request().Header.Get("Content-Type"))
	switch {
	case mt == "application/json":
		var obj map[string]any
		if json.Unmarshal(b, &obj) != nil {
			return nil
		}
		out := map[string][]string{}
		for k, v := range obj {
			if s, ok := v.(string); ok {
				out[k] = []string{s}
			}
		}
		return out
	case mt == "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(b))
		if err != nil {
			return nil
		}
		return vals
	case mt == "multipart/form-data":
		form, err := multipart.NewReader(bytes.NewReader(b), params["boundary"]).ReadForm(1 << 20)
		if err != nil {
			return nil
		}
		return form.Value
	}
	return nil
}

// hide removes the used key from what the upstream receives.
func (in *instance) hide(ex *gateway.Exchange, where int, name string) {
	switch where {
	case inHeader:
		ex.ServiceRequestHeader().Del(name)
	case inQuery:
		vals, _ := url.ParseQuery(ex.ServiceRequestQuery())
		vals.Del(name)
		ex.SetServiceRequestQuery(vals.Encode())
	case inBody:
		b, _ := ex.ReadBody()
		mt, _, _ := mime.ParseMediaType(ex.Request().Header.Get("Content-Type"))
		switch mt {
		case "application/json":
			var obj map[string]any
			if json.Unmarshal(b, &obj) == nil {
				delete(obj, name)
				out, _ := json.Marshal(obj)
				ex.SetServiceRequestBody(out)
			}
		case "application/x-www-form-urlencoded":
			if vals, err := url.ParseQuery(string(b)); err == nil {
				vals.Del(name)
				ex.SetServiceRequestBody([]byte(vals.Encode()))
			}
		}
		// Multipart bodies are forwarded as received: rewriting them would
		// change their boundaries and framing.
	}
}
