package prometheus

import (
	"iter"
	"sync/atomic"

	prom "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
)

// datakitInstance is a compiled plugin instance that records datakit series
// (the datakit plugin's): its plugin label and its declared nodes' names and
// types.
type datakitInstance interface {
	MetricsLabel() string
	MetricNodes() iter.Seq2[string, string]
}

// Swapped adopts s as the running configuration (gateway.Options.OnSwap):
// the series of entities it no longer has are deleted, so reloads do not
// grow the series count (gateway.md §11.1), and kong_upstream_target_health
// follows its Upstreams. A request still running on the previous snapshot
// may record a deleted series again; the next swap deletes it.
func (m *Metrics) Swapped(s *gateway.Snapshot) {
	m.swapMu.Lock()
	defer m.swapMu.Unlock()
	l := liveLabels(s)
	route := func(lb prom.Labels) bool { return l.routes[[2]string{lb["service"], lb["route"]}] }
	routeConsumer := func(lb prom.Labels) bool { return route(lb) && l.consumers[lb["consumer"]] }
	plugin := func(lb prom.Labels) bool { return l.plugins[lb["plugin"]] }
	node := func(lb prom.Labels) bool {
		typ, ok := l.nodes[[2]string{lb["plugin"], lb["node"]}]
		return ok && typ == lb["type"]
	}
	nodeName := func(lb prom.Labels) bool {
		_, ok := l.nodes[[2]string{lb["plugin"], lb["node"]}]
		return ok
	}

	prune(m.requests, routeConsumer)
	prune(m.bandwidth, routeConsumer)
	prune(m.requestLatency, route)
	prune(m.upstreamLatency, route)
	prune(m.kongLatency, route)
	prune(m.planRuns, plugin)
	prune(m.nodeRuns, node)
	prune(m.nodeDuration, node)
	prune(m.callRequests, nodeName)
	prune(m.cacheLookups, nodeName)

	if l.upstreamHealth {
		m.targetHealth.snap.Store(s)
	} else {
		m.targetHealth.snap.Store(nil)
	}
}

// live are the label values a snapshot's entities give series.
type live struct {
	routes    map[[2]string]bool   // service and route labels of each Route
	consumers map[string]bool      // usernames, and "" (no consumer)
	plugins   map[string]bool      // datakit instances' plugin labels
	nodes     map[[2]string]string // datakit plugin label and node name: node type
	// upstreamHealth: an active prometheus instance sets
	// upstream_health_metrics.
	upstreamHealth bool
}

func liveLabels(s *gateway.Snapshot) live {
	l := live{routes: map[[2]string]bool{}, consumers: map[string]bool{"": true},
		plugins: map[string]bool{}, nodes: map[[2]string]string{}}
	if e := s.Entities(); e != nil {
		services := make(map[string]int, len(e.Services))
		for i := range e.Services {
			services[e.Services[i].ID] = i
		}
		for i := range e.Routes {
			rt := &e.Routes[i]
			var svc *config.Service
			if rt.Service != nil {
				if j, ok := services[rt.Service.ID]; ok {
					svc = &e.Services[j]
				}
			}
			service, route := entityLabels(svc, rt)
			l.routes[[2]string{service, route}] = true
		}
		for _, c := range e.Consumers {
			if c.Username != nil {
				l.consumers[*c.Username] = true
			}
		}
	}
	for in := range s.Instances() {
		switch in := in.(type) {
		case datakitInstance:
			label := in.MetricsLabel()
			l.plugins[label] = true
			for node, typ := range in.MetricNodes() {
				l.nodes[[2]string{label, node}] = typ
			}
		case *instance:
			l.upstreamHealth = l.upstreamHealth || in.s["upstream_health_metrics"]
		}
	}
	return l
}

// vec is a labelled metric family whose series can be deleted.
type vec interface {
	prom.Collector
	Delete(prom.Labels) bool
}

// prune deletes the series of v whose labels keep rejects.
func prune(v vec, keep func(prom.Labels) bool) {
	ch := make(chan prom.Metric)
	go func() {
		v.Collect(ch)
		close(ch)
	}()
	// Collected first, deleted after: Collect holds the family's lock.
	var stale []prom.Labels
	for metric := range ch {
		var pb dto.Metric
		if metric.Write(&pb) != nil {
			continue
		}
		lb := make(prom.Labels, len(pb.GetLabel()))
		for _, p := range pb.GetLabel() {
			lb[p.GetName()] = p.GetValue()
		}
		if !keep(lb) {
			stale = append(stale, lb)
		}
	}
	for _, lb := range stale {
		v.Delete(lb)
	}
}

// healthStates are kong_upstream_target_health's states: one series each per
// Target, 1 on the current one.
var healthStates = []string{"healthchecks_off", "healthy", "unhealthy", "dns_error"}

// targetHealth is kong_upstream_target_health, read from the running
// snapshot at scrape time. Without health checks (gateway.md §3.6) a Target
// is healthchecks_off, or dns_error after its name failed to resolve.
type targetHealth struct {
	desc *prom.Desc
	// snap is the running snapshot while an instance asks for the metric,
	// else nil.
	snap atomic.Pointer[gateway.Snapshot]
}

func newTargetHealth() *targetHealth {
	return &targetHealth{desc: prom.NewDesc("kong_upstream_target_health",
		"Health status of targets of upstream. States = healthchecks_off|healthy|unhealthy|dns_error, value is 1 when state is populated.",
		[]string{"upstream", "target", "address", "state", "subsystem"}, nil)}
}

func (c *targetHealth) Describe(ch chan<- *prom.Desc) { ch <- c.desc }

func (c *targetHealth) Collect(ch chan<- prom.Metric) {
	s := c.snap.Load()
	if s == nil {
		return
	}
	for _, t := range s.TargetHealth() {
		current := "healthchecks_off"
		if t.DNSError {
			current = "dns_error"
		}
		for _, state := range healthStates {
			v := 0.0
			if state == current {
				v = 1
			}
			ch <- prom.MustNewConstMetric(c.desc, prom.GaugeValue, v, t.Upstream, t.Target, t.Target, state, "http")
		}
	}
}
