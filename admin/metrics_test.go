package admin_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/datakit-gateway/datakit/admin"
)

// TestMetricsSeam: /metrics is served by the handler the node gives, and
// not at all without one.
func TestMetricsSeam(t *testing.T) {
	if w := newEnv(t, "", nil).do(t, req{path: "/metrics"}); w.Code != http.StatusNotFound {
		t.Errorf("without a metrics handler: %d, want 404", w.Code)
	}
	e := newEnv(t, "", func(o *admin.Options) {
		o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "kong_datastore_reachable 1\n")
		})
	})
	if w := e.do(t, req{path: "/metrics"}); w.Code != 200 || w.Body.String() != "kong_datastore_reachable 1\n" {
		t.Errorf("with a metrics handler: %d %q", w.Code, w.Body.String())
	}
}
