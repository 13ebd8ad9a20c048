package main

import (
	"context"
	"log/slog"

	"github.com/datakit-gateway/datakit/admin"
	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/plugins/datakit"
	"github.com/datakit-gateway/datakit/gateway/settings"
	"github.com/datakit-gateway/datakit/graphrun"
	"github.com/datakit-gateway/datakit/nodes"
)

// adminNode adapts the running node to the Admin API's view of it.
type adminNode struct{ n *node }

var _ admin.Node = adminNode{}

func (a adminNode) Active() (*config.Entities, string) {
	snap := a.n.gw.Snapshot()
	if snap == nil {
		return nil, ""
	}
	return snap.Entities(), snap.Hash()
}

func (a adminNode) LoadDeclarative(ctx context.Context, doc []byte) error {
	return a.n.gw.LoadDeclarative(ctx, doc, a.n.build)
}

func (a adminNode) Status() admin.Status {
	total, inflight := a.n.gw.Stats()
	st := admin.Status{
		Server:      admin.ServerStatus{TotalRequests: total, ConnectionsActive: inflight},
		ConfigError: a.n.server.ConfigError(),
		Draining:    a.n.server.Draining(),
	}
	if a.n.store != nil {
		st.DatabaseReachable = a.n.store.Reachable()
	}
	if snap := a.n.gw.Snapshot(); snap != nil {
		st.Hash, st.LoadedAt, st.Ready, st.Revision = snap.Hash(), snap.LoadedAt(), true, snap.Revision()
		st.Empty = snap.Entities() == nil || snap.Entities().Count() == 0
	}
	for _, l := range a.n.server.Listeners() {
		st.Listeners = append(st.Listeners, admin.Listener{Address: l.Address, SSL: l.SSL, Bound: l.Bound})
	}
	return st
}

// adminOptions configure the Admin API of the node (DB-less mode).
func adminOptions(n *node, st *settings.Settings) admin.Options {
	loaded := n.plugins.All()
	infos := make([]admin.PluginInfo, 0, len(loaded))
	var graphs admin.Graphs
	for _, p := range loaded {
		infos = append(infos, admin.PluginInfo{Name: p.Name(), Version: p.Version(), Priority: p.Priority()})
		if p.Name() == datakit.Name {
			graphs = graphCompiler(st, n.logger)
		}
	}
	opts := admin.Options{
		Database: st.Database, Node: adminNode{n}, Plugins: n.plugins, LoadedPlugins: infos, Store: n.store,
		Configuration: st.Public(), NodeID: st.NodeID, Version: version,
		AdminToken: st.AdminToken.Reveal(), AllowedHosts: st.AdminAllowedHosts, GUIOrigins: st.AdminGUIOrigin,
		MaxBodySize: st.AdminMaxBodySize, Logger: n.logger,
		LatencyHeader: st.Headers.Has(settings.HeaderAdminLatency),
		Metrics:       n.metricsHandler(),
		Graphs:        graphs,
	}
	if policy, err := destinationPolicy(st); err == nil { // serve refused a bad policy before this
		opts.GraphLiveCalls = &graphrun.Live{Destination: policy.CheckURL, DialControl: policy.ControlHost}
	}
	if st.Headers.Has(settings.HeaderServer) {
		opts.ServerHeader = "datakit/" + version
	}
	return opts
}

// graphCompiler compiles datakit configurations for the Admin API's graph
// endpoints (§4.11) with the node types and limits the gateway's registry
// has (buildPlugins). It only compiles, never runs a plan, so it is
// registered offline: no Redis client, no network.
func graphCompiler(st *settings.Settings, logger *slog.Logger) admin.GraphsFunc {
	reg := engine.NewRegistry()
	nodes.Register(reg, nodes.Deps{Version: version, Logger: logger, Offline: true,
		MaxCallBodyBytes: st.DatakitMaxBodySize, JQTimeout: st.DatakitJqTimeout})
	return func(cfg map[string]any) (*engine.Plan, error) {
		return engine.Compile(cfg, reg, engine.Options{PlanTimeout: st.DatakitPlanTimeout})
	}
}
