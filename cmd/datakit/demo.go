package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/datakit-gateway/datakit/demo"
	"github.com/datakit-gateway/datakit/gateway/settings"
)

// runDemo starts a DB-less node on loopback with the demo configuration and
// its mock services, and prints what to try.
func runDemo(args []string, stdout, stderr io.Writer) int {
	f, fs, err := parseServeFlags("demo", args, stderr, "proxy-listen", "admin-listen", "status-listen")
	if err != nil || fs.NArg() > 0 {
		return exitUsage
	}
	services, err := demo.Start()
	if err != nil {
		fmt.Fprintln(stderr, "demo services:", err)
		return exitInvalid
	}
	defer services.Close()
	overrides := append([]string{"database=off", "proxy_listen=127.0.0.1:8000", "admin_listen=127.0.0.1:8001",
		"status_listen=127.0.0.1:8007", "declarative_config_string=" + string(services.Config())}, f.overrides...)
	st, err := settings.Load(settings.LoadOptions{ConfPath: f.conf, Env: os.Environ(), Overrides: overrides})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitInvalid
	}
	for _, l := range append(append(st.ProxyListen, st.AdminListen...), st.StatusListen...) {
		if !l.IsLoopback() {
			fmt.Fprintf(stderr, "datakit demo listens on loopback only: %s is not a loopback address\n", l.Address())
			return exitUsage
		}
	}
	logger := newLogger(st, stderr)
	tuneProcess(logger)
	n, err := newNode(st, logger)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitInvalid
	}
	return n.run(context.Background(), func(addrs []string) {
		proxy := "http://" + addrs[0]
		fmt.Fprintf(stdout, `datakit demo is running (Ctrl-C to stop).
  token service: %s    echo upstream: %s

Token exchange — the graph fetches a token and injects it as Authorization:
  curl -s '%s/token-exchange?api_key=K'

Two APIs called in parallel, merged by jq, answered by an exit node:
  curl -s %s/combine

A debug trace of a graph run (debug: true plus the trace header):
  curl -s -H 'X-DataKit-Debug-Trace: 1' %s/debug

The running configuration through the Admin API:
  curl -s http://%s/config

The graphs, drawn (paste a debug trace to see each node's status):
  http://%[6]s/graph/

Status: curl -s http://%s/status
`, services.Token, services.Upstream, proxy, proxy, proxy, st.AdminListen[0].Address(), st.StatusListen[0].Address())
	})
}
