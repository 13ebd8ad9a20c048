package prometheus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/plugins/prometheus"
)

func TestConfigValidation(t *testing.T) {
	p := prometheus.New(nil, "test")
	if p.Name() != "prometheus" || p.Priority() != 13 {
		t.Fatalf("plugin = %s/%d", p.Name(), p.Priority())
	}
	_, err := p.Compile(context.Background(), config.Plugin{Config: map[string]any{
		"per_consumer": "yes", "bogus": true, "latency_metrics": true}}, gateway.CompileEnv{})
	var fe *config.FieldErrors
	if !errors.As(err, &fe) || fe.Len() != 2 {
		t.Fatalf("Compile = %v, want 2 field errors", err)
	}
	for _, want := range []string{"expected a boolean", "unknown field"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	inst, err := p.Compile(context.Background(), config.Plugin{Config: map[string]any{"ai_metrics": true}}, gateway.CompileEnv{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := inst.(interface{ Config() map[string]any }).Config()
	if len(cfg) != 7 || cfg["ai_metrics"] != true || cfg["per_consumer"] != false {
		t.Fatalf("Config() = %v, want 7 booleans with defaults false", cfg)
	}
}

// TestLabels checks the label fallbacks: service host without a name, route
// id without a name, consumer only with per_consumer, bandwidth directions.
func TestLabels(t *testing.T) {
	reg := prom.NewRegistry()
	m := prometheus.NewMetrics(reg, prometheus.Options{Kong: true, NodeID: "n", DatastoreReachable: func() bool { return false }})
	p := prometheus.New(m, "test")
	user := "alice"
	rec := &gateway.LogRecord{Status: 201, Source: "service", Route: &config.Route{ID: "r-id"},
		Service: &config.Service{Host: "example.test"}, Consumer: &config.Consumer{Username: &user},
		Latency: 30 * time.Millisecond, UpstreamLatency: 20 * time.Millisecond, GatewayLatency: 10 * time.Millisecond,
		Tries: 1, BytesIn: 100, BytesOut: 7}
	for _, perConsumer := range []bool{true, false} {
		inst, err := p.Compile(context.Background(), config.Plugin{Config: map[string]any{"per_consumer": perConsumer,
			"status_code_metrics": true, "bandwidth_metrics": true}}, gateway.CompileEnv{})
		if err != nil {
			t.Fatal(err)
		}
		inst.(gateway.LogHandler).Log(rec)
	}
	want := `
# HELP kong_bandwidth_bytes Total bandwidth (ingress/egress) throughput in bytes
# TYPE kong_bandwidth_bytes counter
kong_bandwidth_bytes{consumer="",direction="egress",route="r-id",service="example.test",workspace="default"} 7
kong_bandwidth_bytes{consumer="",direction="ingress",route="r-id",service="example.test",workspace="default"} 100
kong_bandwidth_bytes{consumer="alice",direction="egress",route="r-id",service="example.test",workspace="default"} 7
kong_bandwidth_bytes{consumer="alice",direction="ingress",route="r-id",service="example.test",workspace="default"} 100
# HELP kong_datastore_reachable Datastore reachable from Kong, 0 is unreachable
# TYPE kong_datastore_reachable gauge
kong_datastore_reachable 0
# HELP kong_http_requests_total HTTP status codes per consumer/service/route in Kong
# TYPE kong_http_requests_total counter
kong_http_requests_total{code="201",consumer="",route="r-id",service="example.test",source="service",workspace="default"} 1
kong_http_requests_total{code="201",consumer="alice",route="r-id",service="example.test",source="service",workspace="default"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kong_http_requests_total",
		"kong_bandwidth_bytes", "kong_datastore_reachable"); err != nil {
		t.Fatal(err)
	}
	// latency_metrics off: no latency series.
	if n := testutil.CollectAndCount(reg, "kong_request_latency_ms"); n != 0 {
		t.Fatalf("latency series = %d, want 0", n)
	}
}

func TestConfigReloads(t *testing.T) {
	reg := prom.NewRegistry()
	m := prometheus.NewMetrics(reg, prometheus.Options{})
	m.SetConfigRevision(3)
	m.ConfigReloaded(5, nil)
	m.ConfigReloaded(6, errors.New("bad"))
	want := `
# HELP datakit_config_reloads_total Configuration reloads, by result (success, error)
# TYPE datakit_config_reloads_total counter
datakit_config_reloads_total{result="error"} 1
datakit_config_reloads_total{result="success"} 1
# HELP datakit_config_revision Revision of the running configuration (0 in DB-less mode)
# TYPE datakit_config_revision gauge
datakit_config_revision 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "datakit_config_reloads_total", "datakit_config_revision"); err != nil {
		t.Fatal(err)
	}
	// Without the plugin loaded, no Kong-compatible metrics are registered.
	if n, _ := testutil.GatherAndCount(reg, "kong_node_info"); n != 0 {
		t.Fatalf("kong_node_info registered without Kong: %d", n)
	}
}
