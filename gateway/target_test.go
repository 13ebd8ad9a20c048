package gateway_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
)

// targetSetter sends every request to a fixed host:port, as
// kong.service.target does.
type targetSetter struct {
	host string
	port int
}

func (t targetSetter) Access(_ context.Context, ex *gateway.Exchange) error {
	ex.SetTarget(t.host, t.port)
	return nil
}

// TestTargetControl: a plugin-chosen target named by host is checked when
// the proxy dials it; a refusal answers 502 and the target is never reached.
func TestTargetControl(t *testing.T) {
	up := newUpstream(t, nil)
	_, portStr := up.hostPort()
	port, _ := strconv.Atoi(portStr)
	plugin := &testPlugin{name: "target", priority: 900, build: func(config.Plugin) gateway.Instance {
		return targetSetter{host: "localhost", port: port}
	}}
	doc := `_format_version: "3.0"
services:
  - name: svc
    host: 192.0.2.1
    routes: [{name: r, paths: [/]}]
plugins: [{name: target}]
`
	refuseLoopback := func(host string) func(network, address string, c syscall.RawConn) error {
		return func(_, address string, _ syscall.RawConn) error {
			h, _, _ := net.SplitHostPort(address)
			if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
				return errors.New("destination not allowed")
			}
			return nil
		}
	}
	refused := startGateway(t, doc, setup{plugins: []gateway.Plugin{plugin},
		build: gateway.BuildOptions{TargetControl: refuseLoopback}})
	if resp := send(t, refused, request{target: "/"}); resp.StatusCode != 502 || up.count() != 0 {
		t.Errorf("refused target: %d, upstream saw %d requests; want 502 and none", resp.StatusCode, up.count())
	}
	open := startGateway(t, doc, setup{plugins: []gateway.Plugin{plugin}})
	if resp := send(t, open, request{target: "/"}); resp.StatusCode != 200 || up.count() != 1 {
		t.Errorf("without a control: %d, upstream saw %d requests; want 200 and one", resp.StatusCode, up.count())
	}
}

// timeoutSetter shortens the read timeout of requests that ask for it, as
// kong.service.set_timeouts does.
type timeoutSetter struct{}

func (timeoutSetter) Access(_ context.Context, ex *gateway.Exchange) error {
	if ex.Request().Header.Get("X-Short") != "" {
		ex.SetTimeouts(0, 0, 50*time.Millisecond)
	}
	return nil
}

// TestSetTimeouts: a plugin's timeouts apply to its request only (§9.4).
func TestSetTimeouts(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	})
	plugin := &testPlugin{name: "timeouts", priority: 900, build: func(config.Plugin) gateway.Instance { return timeoutSetter{} }}
	gw := startGateway(t, serviceDoc(up, "", "      - {name: r, paths: [/]}\n")+"plugins: [{name: timeouts}]\n",
		setup{plugins: []gateway.Plugin{plugin}})
	if r := send(t, gw, request{target: "/", header: http.Header{"X-Short": {"1"}}}); r.StatusCode != 504 {
		t.Errorf("read timeout set to 50 ms = %d, want 504", r.StatusCode)
	}
	if r := send(t, gw, request{target: "/"}); r.StatusCode != 200 {
		t.Errorf("the Service's read timeout = %d, want 200", r.StatusCode)
	}
}
