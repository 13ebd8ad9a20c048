// Package prometheus is the prometheus plugin (gateway.md §9.7) and the
// process's metric collectors (§11.1): Kong-compatible request metrics
// recorded in the log phase, and the datakit engine and configuration
// metrics other packages record through the same Metrics value.
package prometheus

import (
	"context"
	"maps"
	"slices"
	"strconv"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
)

// Name and Priority of the plugin.
const (
	Name     = "prometheus"
	Priority = 13
)

// workspace is always Kong's default, so Kong dashboards work.
const workspace = "default"

// Plugin is the prometheus plugin.
type Plugin struct {
	m       *Metrics
	version string
}

var _ gateway.Plugin = (*Plugin)(nil)

// New returns the plugin recording into m.
func New(m *Metrics, version string) *Plugin { return &Plugin{m: m, version: version} }

func (p *Plugin) Name() string                { return Name }
func (p *Plugin) Priority() int               { return Priority }
func (p *Plugin) Version() string             { return p.version }
func (p *Plugin) Schema() config.PluginSchema { return config.PluginSchema{} }

// flags are the configuration's booleans (all default false).
var flags = []string{"per_consumer", "status_code_metrics", "latency_metrics", "bandwidth_metrics",
	"upstream_health_metrics", "ai_metrics", "wasm_metrics"}

// settings is a validated configuration.
type settings map[string]bool

func decode(in map[string]any) (settings, *config.FieldErrors) {
	s := settings{}
	for _, f := range flags {
		s[f] = false
	}
	errs := &config.FieldErrors{}
	for _, k := range slices.Sorted(maps.Keys(in)) {
		v := in[k]
		if _, known := s[k]; !known {
			errs.Field(k).Add("unknown field")
			continue
		}
		if v == nil {
			continue
		}
		b, ok := v.(bool)
		if !ok {
			errs.Field(k).Add("expected a boolean")
			continue
		}
		s[k] = b
	}
	return s, errs
}

// Compile validates the configuration.
func (p *Plugin) Compile(_ context.Context, cfg config.Plugin, _ gateway.CompileEnv) (gateway.Instance, error) {
	s, errs := decode(cfg.Config)
	if !errs.Empty() {
		return nil, errs
	}
	return &instance{m: p.m, s: s, perConsumer: s["per_consumer"], status: s["status_code_metrics"],
		latency: s["latency_metrics"], bandwidth: s["bandwidth_metrics"]}, nil
}

type instance struct {
	m                                       *Metrics
	s                                       settings
	perConsumer, status, latency, bandwidth bool
}

var _ gateway.LogHandler = (*instance)(nil)

// Config is the configuration with its defaults, as stored.
func (in *instance) Config() map[string]any {
	out := make(map[string]any, len(in.s))
	for k, v := range in.s {
		out[k] = v
	}
	return out
}

// Log records a route-matched request. Label values come from the
// configuration only (names, ids, hosts of entities) or small fixed sets.
func (in *instance) Log(rec *gateway.LogRecord) {
	if rec.Route == nil || in.m == nil {
		return
	}
	service, route := entityLabels(rec.Service, rec.Route)
	var consumer string
	if in.perConsumer && rec.Consumer != nil && rec.Consumer.Username != nil {
		consumer = *rec.Consumer.Username
	}
	m := in.m
	if in.status {
		source := "kong"
		if rec.Source == "service" {
			source = "service"
		}
		m.requests.WithLabelValues(service, route, strconv.Itoa(rec.Status), source, workspace, consumer).Inc()
	}
	if in.latency {
		m.requestLatency.WithLabelValues(service, route, workspace).Observe(ms(rec.Latency.Microseconds()))
		if rec.Tries > 0 {
			m.upstreamLatency.WithLabelValues(service, route, workspace).Observe(ms(rec.UpstreamLatency.Microseconds()))
		}
		m.kongLatency.WithLabelValues(service, route, workspace).Observe(ms(rec.GatewayLatency.Microseconds()))
	}
	if in.bandwidth {
		if rec.BytesIn > 0 {
			m.bandwidth.WithLabelValues(service, route, "ingress", workspace, consumer).Add(float64(rec.BytesIn))
		}
		if rec.BytesOut > 0 {
			m.bandwidth.WithLabelValues(service, route, "egress", workspace, consumer).Add(float64(rec.BytesOut))
		}
	}
}

// entityLabels are the service and route labels of a Route and its Service
// (nil: none, an empty label): names, else the Service host and the Route id.
func entityLabels(svc *config.Service, rt *config.Route) (service, route string) {
	if svc != nil {
		service = svc.Host
		if svc.Name != nil {
			service = *svc.Name
		}
	}
	route = rt.ID
	if rt.Name != nil {
		route = *rt.Name
	}
	return service, route
}

func ms(us int64) float64 { return float64(us) / 1000 }
