package datakit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway"
)

// compatVersion is the Kong version datakit reports (kong.version).
const compatVersion = "3.11.0"

// exchange adapts a gateway.Exchange to the engine's view of a request.
type exchange struct {
	gx   *gateway.Exchange
	inst *instance
}

var _ engine.Exchange = (*exchange)(nil)

var errInvalidJSONBody = &gateway.HTTPError{Status: http.StatusBadRequest, Message: "Invalid JSON in request body"}

func (x *exchange) Request(_ context.Context, field string) (any, error) {
	r := x.gx.Request()
	switch field {
	case "body":
		b, err := x.gx.ReadBody()
		if err != nil {
			return nil, err
		}
		v, err := engine.DecodeBody(r.Header.Get("Content-Type"), b, len(b) > 0)
		if err != nil {
			return nil, errInvalidJSONBody
		}
		return v, nil
	case "headers":
		h := engine.HeaderMap(r.Header)
		h["Host"] = r.Host
		return h, nil
	case "query":
		return engine.DecodeQuery(r.URL.RawQuery), nil
	case "path":
		return x.gx.NormalizedPath(), nil
	case "raw_path":
		return r.URL.EscapedPath(), nil
	case "port":
		return x.gx.ListenPort(), nil
	case "method":
		return r.Method, nil
	case "scheme":
		return x.gx.Scheme(), nil
	case "version":
		switch {
		case r.ProtoMajor == 2:
			return 2, nil
		case r.ProtoMinor == 0:
			return 1, nil
		}
		return 1.1, nil
	}
	return nil, nil
}

func (x *exchange) ServiceResponse(_ context.Context, field string) (any, error) {
	resp := x.gx.ServiceResponse()
	if resp == nil {
		return nil, nil
	}
	switch field {
	case "status":
		return resp.StatusCode, nil
	case "headers":
		return engine.HeaderMap(resp.Header), nil
	case "body":
		b, _ := x.gx.ServiceResponseBody()
		v, err := engine.DecodeBody(resp.Header.Get("Content-Type"), b, len(b) > 0)
		if err != nil {
			return nil, &gateway.HTTPError{Status: http.StatusBadGateway,
				Message: "An invalid response was received from the upstream server", Err: err}
		}
		return v, nil
	case "raw_body":
		b, _ := x.gx.ServiceResponseBody()
		return string(b), nil
	}
	return nil, nil
}

func (x *exchange) ApplyServiceRequest(m *engine.Message) error {
	engine.MergeHeaders(x.gx.ServiceRequestHeader(), m.Headers)
	if m.Query != nil {
		x.gx.SetServiceRequestQuery(*m.Query)
	}
	if m.Body != nil {
		x.gx.SetServiceRequestBody(m.Body.Bytes)
		if m.Body.ContentType != "" {
			x.gx.ServiceRequestHeader().Set("Content-Type", m.Body.ContentType)
		}
	}
	return nil
}

func (x *exchange) ApplyResponse(m *engine.Message) error {
	h := x.gx.ResponseHeader()
	if h == nil {
		return nil
	}
	engine.MergeHeaders(h, m.Headers)
	if m.Body != nil {
		x.gx.SetResponseBody(m.Body.Bytes)
		if m.Body.ContentType != "" {
			h.Set("Content-Type", m.Body.ContentType)
		}
	}
	return nil
}

// Property reads a property of spec §9.
func (x *exchange) Property(name string) (any, error) {
	gx := x.gx
	r := gx.Request()
	switch name {
	case "kong.client.ip", "kong.client.forwarded_ip":
		return gx.ClientIP(), nil
	case "kong.client.port", "kong.client.forwarded_port":
		return gx.ClientPort(), nil
	case "kong.request.port", "kong.request.forwarded_port":
		return gx.ListenPort(), nil
	case "kong.client.protocol", "kong.request.forwarded_scheme":
		return gx.Scheme(), nil
	case "kong.request.forwarded_host":
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		return host, nil
	case "kong.client.consumer":
		if c := gx.Consumer(); c != nil {
			return entityValue(c), nil
		}
		return nil, nil
	case "kong.client.credential":
		if c := gx.Credential(); c != nil {
			return entityValue(c, "key"), nil
		}
		return nil, nil
	case "kong.client.consumer_groups":
		return []any{}, nil
	case "kong.router.route":
		if rt := gx.Route(); rt != nil {
			return entityValue(rt), nil
		}
		return nil, nil
	case "kong.router.service":
		if s := gx.Service(); s != nil {
			return entityValue(s), nil
		}
		return nil, nil
	case "kong.route_id":
		if rt := gx.Route(); rt != nil {
			return rt.ID, nil
		}
		return nil, nil
	case "kong.route_name":
		if rt := gx.Route(); rt != nil && rt.Name != nil {
			return *rt.Name, nil
		}
		return nil, nil
	case "kong.service_id":
		if s := gx.Service(); s != nil {
			return s.ID, nil
		}
		return nil, nil
	case "kong.service_name":
		if s := gx.Service(); s != nil && s.Name != nil {
			return *s.Name, nil
		}
		return nil, nil
	case "kong.service.response.status":
		if resp := gx.ServiceResponse(); resp != nil {
			return resp.StatusCode, nil
		}
		return nil, nil
	case "kong.response.source":
		return "service", nil
	case "kong.version":
		return compatVersion, nil
	case "kong.node.id":
		return x.inst.plugin.opts.NodeID, nil
	}
	switch {
	case strings.HasPrefix(name, "kong.configuration."):
		return x.inst.plugin.opts.Setting(strings.TrimPrefix(name, "kong.configuration.")), nil
	case strings.HasPrefix(name, "kong.ctx.shared."):
		return gx.Shared()[strings.TrimPrefix(name, "kong.ctx.shared.")], nil
	case strings.HasPrefix(name, "kong.ctx.plugin."):
		return gx.PluginState(x.inst)[strings.TrimPrefix(name, "kong.ctx.plugin.")], nil
	}
	return nil, nil
}

// SetProperty writes a property of spec §9.
func (x *exchange) SetProperty(name string, v any) (any, error) {
	gx := x.gx
	switch name {
	case "kong.client.consumer":
		return x.setConsumer(v)
	case "kong.service.target":
		s, _ := v.(string)
		host, port, ok := parseTarget(s)
		if !ok {
			return nil, fmt.Errorf("invalid target %q", fmt.Sprint(v))
		}
		if check := x.inst.plugin.opts.TargetDestination; check != nil {
			if err := check(host, uint16(port)); err != nil { // #nosec G115 -- parseTarget bounds port to 1–65535
				return nil, err
			}
		}
		gx.SetTarget(host, port)
		return v, nil
	case "kong.service.upstream":
		s, _ := v.(string)
		if err := gx.SetUpstream(s); err != nil {
			return nil, fmt.Errorf("upstream %q not found", fmt.Sprint(v))
		}
		return v, nil
	case "kong.service.request.scheme":
		if v != "http" && v != "https" {
			return nil, fmt.Errorf("invalid scheme %q", fmt.Sprint(v))
		}
		gx.SetServiceScheme(v.(string))
		return v, nil
	case "kong.response.status":
		n, ok := engine.AsInt(v)
		if !ok || n < 100 || n > 599 {
			return nil, fmt.Errorf("invalid status %s", engine.FormatNumber(v))
		}
		gx.SetResponseStatus(int(n))
		return v, nil
	}
	switch {
	case strings.HasPrefix(name, "kong.ctx.shared."):
		setKey(gx.Shared(), strings.TrimPrefix(name, "kong.ctx.shared."), v)
		return v, nil
	case strings.HasPrefix(name, "kong.ctx.plugin."):
		setKey(gx.PluginState(x.inst), strings.TrimPrefix(name, "kong.ctx.plugin."), v)
		return v, nil
	}
	return nil, fmt.Errorf("property %q cannot be set", name)
}

// parseTarget reads "host:port" ("[v6]:port") as the authority of a URL:
// url.Parse refuses control bytes, spaces and the other bytes no host
// holds, which the proxy would otherwise carry to its dial (hardening T26).
func parseTarget(s string) (host string, port int, ok bool) {
	u, err := url.Parse("http://" + s)
	if err != nil || u.Host != s || u.Hostname() == "" {
		return "", 0, false
	}
	port, err = strconv.Atoi(u.Port())
	if err != nil || port < 1 || port > 65535 {
		return "", 0, false
	}
	return u.Hostname(), port, true
}

func setKey(m map[string]any, k string, v any) {
	if v == nil {
		delete(m, k)
		return
	}
	m[k] = v
}

// setConsumer authenticates the consumer named by an object with id,
// username or custom_id.
func (x *exchange) setConsumer(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("consumer not found")
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	c, err := x.gx.FindConsumer(str("id"), str("username"), str("custom_id"))
	if err != nil {
		return nil, errors.New("consumer not found")
	}
	x.gx.Authenticate(c, nil)
	return entityValue(c), nil
}
