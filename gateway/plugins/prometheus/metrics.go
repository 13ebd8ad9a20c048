package prometheus

import (
	"sync"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
)

// KongVersion is the version kong_node_info reports, so Kong dashboards
// recognise the node (gateway.md §11.1).
const KongVersion = "3.11.0"

// Buckets of the latency histograms, in milliseconds (gateway.md §11.1).
var (
	kongLatencyBuckets = []float64{1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000}
	latencyBuckets     = []float64{25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000}
	nodeBuckets        = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
)

// Options configure the process's metrics.
type Options struct {
	// Kong registers the Kong-compatible metrics (the prometheus plugin is
	// loaded); false: only the datakit ones.
	Kong bool
	// NodeID is kong_node_info's node_id.
	NodeID string
	// DatastoreReachable feeds kong_datastore_reachable; nil: always 1
	// (database = off).
	DatastoreReachable func() bool
}

// Metrics are the collectors of one process, created once in main and
// handed to the plugins that record into them. Safe for concurrent use.
type Metrics struct {
	requests        *prom.CounterVec
	requestLatency  *prom.HistogramVec
	upstreamLatency *prom.HistogramVec
	kongLatency     *prom.HistogramVec
	bandwidth       *prom.CounterVec

	planRuns       *prom.CounterVec
	nodeRuns       *prom.CounterVec
	nodeDuration   *prom.HistogramVec
	callRequests   *prom.CounterVec
	cacheLookups   *prom.CounterVec
	configRevision prom.Gauge
	configReloads  *prom.CounterVec

	targetHealth *targetHealth
	swapMu       sync.Mutex // serializes Swapped
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prom.Registerer, opts Options) *Metrics {
	m := &Metrics{
		requests: prom.NewCounterVec(prom.CounterOpts{Name: "kong_http_requests_total",
			Help: "HTTP status codes per consumer/service/route in Kong"},
			[]string{"service", "route", "code", "source", "workspace", "consumer"}),
		requestLatency: prom.NewHistogramVec(prom.HistogramOpts{Name: "kong_request_latency_ms",
			Help: "Total latency incurred during requests for each service/route in Kong", Buckets: latencyBuckets},
			[]string{"service", "route", "workspace"}),
		upstreamLatency: prom.NewHistogramVec(prom.HistogramOpts{Name: "kong_upstream_latency_ms",
			Help: "Latency added by upstream response for each service/route in Kong", Buckets: latencyBuckets},
			[]string{"service", "route", "workspace"}),
		kongLatency: prom.NewHistogramVec(prom.HistogramOpts{Name: "kong_kong_latency_ms",
			Help: "Latency added by Kong and enabled plugins for each service/route in Kong", Buckets: kongLatencyBuckets},
			[]string{"service", "route", "workspace"}),
		bandwidth: prom.NewCounterVec(prom.CounterOpts{Name: "kong_bandwidth_bytes",
			Help: "Total bandwidth (ingress/egress) throughput in bytes"},
			[]string{"service", "route", "direction", "workspace", "consumer"}),

		planRuns: prom.NewCounterVec(prom.CounterOpts{Name: "datakit_plan_runs_total",
			Help: "Datakit plan runs per plugin instance, by outcome (complete, error, exit)"},
			[]string{"plugin", "outcome"}),
		nodeRuns: prom.NewCounterVec(prom.CounterOpts{Name: "datakit_node_runs_total",
			Help: "Datakit node runs, by status (success, error, skipped, cancelled)"},
			[]string{"plugin", "node", "type", "status"}),
		nodeDuration: prom.NewHistogramVec(prom.HistogramOpts{Name: "datakit_node_duration_seconds",
			Help: "Duration of Datakit node runs", Buckets: nodeBuckets},
			[]string{"plugin", "node", "type"}),
		callRequests: prom.NewCounterVec(prom.CounterOpts{Name: "datakit_call_requests_total",
			Help: "Datakit call node requests, by final status code (after retries) or error"},
			[]string{"plugin", "node", "code"}),
		cacheLookups: prom.NewCounterVec(prom.CounterOpts{Name: "datakit_cache_lookups_total",
			Help: "Datakit cache node lookups, by result (hit, miss)"},
			[]string{"plugin", "node", "result"}),
		configRevision: prom.NewGauge(prom.GaugeOpts{Name: "datakit_config_revision",
			Help: "Revision of the running configuration (0 in DB-less mode)"}),
		configReloads: prom.NewCounterVec(prom.CounterOpts{Name: "datakit_config_reloads_total",
			Help: "Configuration reloads, by result (success, error)"}, []string{"result"}),
		targetHealth: newTargetHealth(),
	}
	reg.MustRegister(m.planRuns, m.nodeRuns, m.nodeDuration, m.callRequests, m.cacheLookups,
		m.configRevision, m.configReloads)
	if !opts.Kong {
		return m
	}
	reachable := opts.DatastoreReachable
	if reachable == nil {
		reachable = func() bool { return true }
	}
	info := prom.NewGaugeVec(prom.GaugeOpts{Name: "kong_node_info", Help: "Kong Node metadata information"},
		[]string{"node_id", "version"})
	info.WithLabelValues(opts.NodeID, KongVersion).Set(1)
	datastore := prom.NewGaugeFunc(prom.GaugeOpts{Name: "kong_datastore_reachable",
		Help: "Datastore reachable from Kong, 0 is unreachable"}, func() float64 {
		if reachable() {
			return 1
		}
		return 0
	})
	reg.MustRegister(m.requests, m.requestLatency, m.upstreamLatency, m.kongLatency, m.bandwidth,
		m.targetHealth, info, datastore)
	return m
}

// PlanRun counts one request's run of a datakit plan.
func (m *Metrics) PlanRun(plugin, outcome string) {
	m.planRuns.WithLabelValues(plugin, outcome).Inc()
}

// NodeDone records a finished datakit node; status is success, error,
// skipped or cancelled. Durations are observed for nodes that ran.
func (m *Metrics) NodeDone(plugin, node, typ, status string, d time.Duration) {
	m.nodeRuns.WithLabelValues(plugin, node, typ, status).Inc()
	if status == "success" || status == "error" {
		m.nodeDuration.WithLabelValues(plugin, node, typ).Observe(d.Seconds())
	}
}

// CallDone counts a call node's request; code is its status code or
// "error" (nodes.Metrics).
func (m *Metrics) CallDone(plugin, node, code string) {
	m.callRequests.WithLabelValues(plugin, node, code).Inc()
}

// CacheLookup counts a cache node's GET; result is hit or miss.
func (m *Metrics) CacheLookup(plugin, node, result string) {
	m.cacheLookups.WithLabelValues(plugin, node, result).Inc()
}

// ConfigReloaded records a reload attempt and, when it succeeded, the
// running revision.
func (m *Metrics) ConfigReloaded(revision int64, err error) {
	if err != nil {
		m.configReloads.WithLabelValues("error").Inc()
		return
	}
	m.configReloads.WithLabelValues("success").Inc()
	m.configRevision.Set(float64(revision))
}

// SetConfigRevision sets datakit_config_revision (the initial load).
func (m *Metrics) SetConfigRevision(revision int64) { m.configRevision.Set(float64(revision)) }
