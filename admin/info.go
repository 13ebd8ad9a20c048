package admin

import (
	"embed"
	"encoding/json"
	"maps"
	"net/http"
	"slices"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// bundledSchemas are the config schemas of the bundled plugins in Kong's
// record format, for GET /schemas/plugins/{name}.
//
//go:embed schemas/*.json
var bundledSchemas embed.FS

// root serves GET / (§4.9).
func (a *api) root(w http.ResponseWriter, r *http.Request) {
	available := make(map[string]any, len(a.plugins))
	for _, p := range a.plugins {
		available[p.Name] = map[string]any{"version": p.Version, "priority": p.Priority}
	}
	conf := maps.Clone(a.opts.Configuration)
	if conf == nil {
		conf = map[string]any{}
	}
	if _, ok := conf["database"]; !ok {
		conf["database"] = a.opts.Database
	}
	conf["router_flavor"] = "traditional_compatible"
	conf["role"] = "traditional"
	writeJSON(w, r, http.StatusOK, map[string]any{
		"tagline":         "Welcome to datakit",
		"version":         CompatibleVersion,
		"datakit_version": a.opts.Version,
		"edition":         "community",
		"hostname":        a.opts.Hostname,
		"node_id":         a.opts.NodeID,
		"plugins": map[string]any{
			"available_on_server": available,
			"enabled_in_cluster":  a.enabledInCluster(),
		},
		"configuration": conf,
	})
}

// enabledInCluster lists the names of the configured plugins, sorted,
// from the active snapshot: in DB modes it follows the database within
// the propagation delay (§6.7).
func (a *api) enabledInCluster() []string {
	names := []string{}
	for _, p := range a.active().Plugins {
		if !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return names
}

// status serves GET /status (§4.9).
func (a *api) status(w http.ResponseWriter, r *http.Request) {
	st := a.opts.Node.Status()
	hash := st.Hash
	if hash == "" {
		hash = config.EmptyHash
	}
	var revision, loaded, cfgErr any
	if !a.dbless {
		revision = st.Revision
	}
	if !st.LoadedAt.IsZero() {
		loaded = float64(st.LoadedAt.UnixMilli()) / 1000
	}
	if st.ConfigError != "" {
		cfgErr = st.ConfigError
	}
	listeners := st.Listeners
	if listeners == nil {
		listeners = []Listener{}
	}
	body := map[string]any{
		"server": st.Server,
		"datakit": map[string]any{
			"configuration_revision":  revision,
			"configuration_hash":      hash,
			"configuration_loaded_at": loaded,
			"configuration_error":     cfgErr,
			"draining":                st.Draining,
			"listeners":               listeners,
		},
	}
	if a.dbless {
		body["configuration_hash"] = hash
	} else {
		body["database"] = map[string]any{"reachable": st.DatabaseReachable}
	}
	writeJSON(w, r, http.StatusOK, body)
}

// ready serves GET /status/ready (§4.9).
func (a *api) ready(w http.ResponseWriter, r *http.Request) {
	st := a.opts.Node.Status()
	switch {
	case st.Draining:
		writeJSON(w, r, http.StatusServiceUnavailable, map[string]string{"message": "draining"})
	case !st.Ready || a.dbless && st.Empty:
		writeJSON(w, r, http.StatusServiceUnavailable,
			map[string]string{"message": "no configuration available (empty configuration present)"})
	default:
		writeJSON(w, r, http.StatusOK, map[string]string{"message": "ready"})
	}
}

// listEndpoints serves GET /endpoints: every path template, sorted.
func (a *api) listEndpoints(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, map[string]any{"data": a.endpoints})
}

// enabledPlugins serves GET /plugins/enabled.
func (a *api) enabledPlugins(w http.ResponseWriter, r *http.Request) {
	names := make([]string, len(a.plugins))
	for i, p := range a.plugins {
		names[i] = p.Name
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"enabled_plugins": names})
}

// pluginSchema serves GET /schemas/plugins/{name}: the plugin's subschema
// (scope restrictions, protocols, config) so decK fills defaults (§4.9).
func (a *api) pluginSchema(w http.ResponseWriter, r *http.Request) {
	name := param(r, "name")
	i := slices.IndexFunc(a.plugins, func(p PluginInfo) bool { return p.Name == name })
	if i < 0 {
		a.fail(w, r, &Error{Status: http.StatusNotFound, Message: "No plugin named '" + name + "'"})
		return
	}
	info := a.plugins[i]
	cfg := json.RawMessage(info.Schema)
	if cfg == nil {
		b, err := bundledSchemas.ReadFile("schemas/" + name + ".json")
		if err != nil {
			b = []byte(`{"type":"record","required":true,"fields":[]}`)
		}
		cfg = b
	}
	var fields []map[string]any
	ps, _ := a.schemas().PluginSchema(name)
	forbid := func(field, ref string) {
		fields = append(fields, map[string]any{field: map[string]any{"type": "foreign", "reference": ref, "eq": nil}})
	}
	if ps.NoConsumer {
		forbid("consumer", "consumers")
	}
	if ps.NoRoute {
		forbid("route", "routes")
	}
	if ps.NoService {
		forbid("service", "services")
	}
	protocols := []string{"grpc", "grpcs", "http", "https"}
	fields = append(fields,
		map[string]any{"protocols": map[string]any{"type": "set", "required": true, "default": protocols,
			"elements": map[string]any{"type": "string", "one_of": protocols}}},
		map[string]any{"config": cfg},
	)
	writeJSON(w, r, http.StatusOK, map[string]any{"fields": fields})
}

// validatePlugin serves POST /schemas/plugins/validate: the body is checked
// as a create, foreign keys unresolved, and nothing is stored (§4.9).
func (a *api) validatePlugin(w http.ResponseWriter, r *http.Request) {
	in, err := a.decodeEntity(r, plugins)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if _, fe := config.DecodePlugin(in, a.schemas()); !fe.Empty() {
		a.fail(w, r, fe)
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]string{"message": "schema validation successful"})
}

// schemas returns the plugin schemas, never nil.
func (a *api) schemas() config.PluginSchemas {
	if a.opts.Plugins == nil {
		return noPlugins{}
	}
	return a.opts.Plugins
}

// noPlugins is the PluginSchemas of a node without plugins.
type noPlugins struct{}

func (noPlugins) PluginSchema(string) (config.PluginSchema, bool) {
	return config.PluginSchema{}, false
}
func (noPlugins) ValidatePluginConfig(p config.Plugin) (map[string]any, error) {
	return p.Config, nil
}
