package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/datakit-gateway/datakit/admin"
	"github.com/datakit-gateway/datakit/egress"
	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/plugins/datakit"
	"github.com/datakit-gateway/datakit/gateway/plugins/keyauth"
	"github.com/datakit-gateway/datakit/gateway/plugins/prometheus"
	"github.com/datakit-gateway/datakit/gateway/settings"
	"github.com/datakit-gateway/datakit/gateway/store"
	"github.com/datakit-gateway/datakit/nodes"
)

// serveFlags are `datakit serve`'s flags; shorthands become --set overrides.
type serveFlags struct {
	conf      string
	overrides []string
	check     bool
}

func parseServeFlags(name string, args []string, stderr io.Writer, shorthands ...string) (*serveFlags, *flag.FlagSet, error) {
	f := &serveFlags{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.conf, "c", "", "settings file")
	fs.StringVar(&f.conf, "conf", "", "settings file")
	fs.Func("set", "NAME=VALUE setting (repeatable)", func(v string) error {
		f.overrides = append(f.overrides, v)
		return nil
	})
	for _, s := range shorthands {
		setting := strings.ReplaceAll(s, "-", "_")
		fs.Func(s, "the "+setting+" setting", func(v string) error {
			f.overrides = append(f.overrides, setting+"="+v)
			return nil
		})
	}
	if name == "serve" {
		fs.BoolVar(&f.check, "check", false, "check the configuration and exit")
	}
	err := fs.Parse(args)
	return f, fs, err
}

var serveShorthands = []string{"database", "declarative-config", "proxy-listen", "admin-listen",
	"status-listen", "sqlite-path", "log-level"}

func runServe(args []string, stdout, stderr io.Writer) int {
	f, fs, err := parseServeFlags("serve", args, stderr, serveShorthands...)
	if err != nil || fs.NArg() > 0 {
		return exitUsage
	}
	st, err := settings.Load(settings.LoadOptions{ConfPath: f.conf, Env: os.Environ(), Overrides: f.overrides})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitInvalid
	}
	logger := newLogger(st, stderr)
	tuneProcess(logger)
	node, err := newNode(st, logger)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitInvalid
	}
	if f.check {
		node.close()
		fmt.Fprintln(stdout, "configuration OK")
		return exitOK
	}
	return node.run(context.Background(), nil)
}

// node is a running gateway with its settings.
type node struct {
	st      *settings.Settings
	logger  *slog.Logger
	gw      *gateway.Gateway
	plugins *gateway.Plugins
	server  *gateway.Server
	build   gateway.BuildOptions
	caches  *nodes.CacheStores // closed when the node stops
	store   store.Store        // nil with database = off; closed when the node stops
	// registry is the process's Prometheus registry; metrics record into it.
	registry *prom.Registry
	metrics  *prometheus.Metrics
}

func newLogger(st *settings.Settings, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: st.LogLevel}
	if st.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// buildPlugins registers the bundled plugins the settings enable, recording
// no metrics (configuration validation).
func buildPlugins(st *settings.Settings, logger *slog.Logger, caches *nodes.CacheStores) (*gateway.Plugins, error) {
	return buildPluginsWithMetrics(st, logger, caches, nil)
}

// buildPluginsWithMetrics is buildPlugins with the process's metrics; nil
// records nothing.
func buildPluginsWithMetrics(st *settings.Settings, logger *slog.Logger, caches *nodes.CacheStores, m *prometheus.Metrics) (*gateway.Plugins, error) {
	var dkMetrics datakit.Metrics
	if m != nil {
		dkMetrics = m // not a typed nil: the plugin checks for nil
	}
	policy, err := destinationPolicy(st)
	if err != nil {
		return nil, err
	}
	reg := engine.NewRegistry()
	nodes.Register(reg, nodes.Deps{Version: version, Logger: logger, Caches: caches,
		MaxCallBodyBytes: st.DatakitMaxBodySize, JQTimeout: st.DatakitJqTimeout,
		JQConcurrency: st.DatakitJqConcurrency, JQMaxValueBytes: st.DatakitJqMaxValueBytes,
		JQMaxArrayIndex: st.DatakitJqMaxArrayIndex, JQMaxRegexBytes: st.DatakitJqMaxRegexBytes,
		JQMaxOutputBytes: st.DatakitJqMaxOutputBytes, JQMaxOutputDepth: st.DatakitJqMaxOutputDepth,
		CallDestination: policy.CheckURL, CallDialControl: policy.ControlHost})
	available := map[string]gateway.Plugin{
		datakit.Name: datakit.New(datakit.Options{Registry: reg, NodeID: st.NodeID, Version: version,
			Engine: engine.Options{PlanTimeout: st.DatakitPlanTimeout, Secrets: engine.NewSecrets()},
			Setting: func(name string) any {
				v, _ := st.Lookup(name)
				return v
			}, Metrics: dkMetrics,
			TargetDestination: func(host string, port uint16) error { return policy.CheckHost(host, port, true) }}),
		keyauth.Name:    keyauth.New(version),
		prometheus.Name: prometheus.New(m, version),
	}
	var loaded []gateway.Plugin
	for _, name := range st.Plugins {
		p, ok := available[name]
		if !ok {
			logger.Warn("plugin not available in this build", "plugin", name)
			continue
		}
		loaded = append(loaded, p)
	}
	return gateway.NewPlugins(loaded...), nil
}

// destinationPolicy compiles datakit_call_allow and datakit_call_deny
// (hardening §2.7); the admin and status listeners are the gateway's own
// addresses, always refused to call nodes and kong.service.target.
// targetControl checks kong.service.target names when the proxy dials them:
// targets are dynamic destinations (hardening.md §2.7). The policy was
// validated by buildPlugins already.
func targetControl(st *settings.Settings) gateway.TargetControl {
	policy, err := destinationPolicy(st)
	if err != nil {
		return nil
	}
	return func(host string) func(network, address string, c syscall.RawConn) error {
		return policy.ControlHost(host, true)
	}
}

func destinationPolicy(st *settings.Settings) (*egress.Policy, error) {
	var self []string
	for _, l := range append(slices.Clone(st.AdminListen), st.StatusListen...) {
		self = append(self, l.Address())
	}
	return egress.New(st.DatakitCallAllow, st.DatakitCallDeny, self)
}

// newNode loads the declarative configuration and prepares the listeners.
func newNode(st *settings.Settings, logger *slog.Logger) (*node, error) {
	// One registry per process (design.md rule 9), served on the Admin API
	// and the status listeners.
	registry := prom.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var n *node
	metrics := prometheus.NewMetrics(registry, prometheus.Options{
		Kong: slices.Contains(st.Plugins, prometheus.Name), NodeID: st.NodeID,
		// Read at scrape time, once the node and its store exist.
		DatastoreReachable: func() bool { return n == nil || n.store == nil || n.store.Reachable() },
	})
	caches := nodes.NewCacheStores()
	plugins, err := buildPluginsWithMetrics(st, logger, caches, metrics)
	if err != nil {
		_ = caches.Close()
		return nil, err
	}
	limits := gateway.Limits{
		ClientBodyBufferLimit: st.ClientBodyBufferLimit, UpstreamResponseBufferLimit: st.UpstreamResponseBufferLimit,
		ClientMaxBodySize: st.ClientMaxBodySize, MaxQueryArgs: st.MaxQueryArgs,
		ClientMaxURISize: int(st.ClientMaxURISize), ClientMaxHeaderSize: int(st.ClientMaxHeaderSize),
		ClientMaxHeaderLine: int(st.ClientMaxHeaderLine),
	}
	upstreamTLS, err := upstreamTLS(st)
	if err != nil {
		return nil, err
	}
	gwOpts := gateway.Options{Version: version, Logger: logger, TrustedIPs: st.TrustedIPs,
		RealIPHeader: st.RealIPHeader, RealIPRecursive: st.RealIPRecursive, AccessLog: st.AccessLog, ErrorFormat: gateway.ParseErrorFormat(st.ErrorDefaultType),
		MaxInflight: int64(st.MaxInflightRequests), OnSwap: metrics.Swapped, Headers: gatewayHeaders(st)}
	for _, l := range st.ProxyListen {
		if l.SSL {
			gwOpts.HTTPSPort = l.Port
			break
		}
	}
	gw := gateway.New(gwOpts)
	n = &node{st: st, logger: logger, gw: gw, plugins: plugins, caches: caches, registry: registry, metrics: metrics,
		build: gateway.BuildOptions{Plugins: plugins, Limits: limits, Logger: logger, UpstreamTLS: upstreamTLS,
			TargetControl: targetControl(st), UpstreamPool: upstreamPool(st)}}
	if st.Database != "off" {
		s, err := openStore(context.Background(), st, logger)
		if err != nil {
			_ = caches.Close()
			return nil, err
		}
		n.store = s
	}
	if err := n.load(); err != nil {
		n.close()
		return nil, err
	}
	if snap := gw.Snapshot(); snap != nil {
		metrics.SetConfigRevision(snap.Revision())
	}
	opts := gateway.ServerOptions{ReadHeaderTimeout: st.ClientHeaderTimeout, IdleTimeout: st.KeepaliveTimeout,
		BodyTimeout: st.ClientBodyTimeout, SendTimeout: st.ClientSendTimeout, BodyMaxDuration: st.ClientBodyMaxDuration,
		MaxHeaderBytes: int(2 * st.ClientMaxHeaderSize), HTTP2MaxConcurrentStreams: st.HTTP2MaxConcurrentStreams,
		DrainDelay: st.DrainDelay, DrainTimeout: st.DrainTimeout, Logger: logger, Metrics: n.metricsHandler()}
	for _, l := range st.ProxyListen {
		a := gateway.ListenAddr{Address: l.Address()}
		if l.SSL {
			// ssl_cert is the fallback certificate; without it the
			// listener binds once a Certificate is configured.
			var fallback *tls.Certificate
			if st.SSLCert != "" {
				cert, err := tls.LoadX509KeyPair(st.SSLCert, st.SSLCertKey)
				if err != nil {
					n.close()
					return nil, fmt.Errorf("ssl_cert: %w", err)
				}
				fallback = &cert
			}
			a.TLS = gw.ProxyTLSConfig(fallback, l.HTTP2)
			a.AwaitCertificate = fallback == nil
		}
		opts.Proxy = append(opts.Proxy, a)
	}
	for _, l := range st.StatusListen {
		opts.Status = append(opts.Status, gateway.ListenAddr{Address: l.Address()})
	}
	for _, l := range st.AdminListen {
		a := gateway.ListenAddr{Address: l.Address()}
		if l.SSL {
			cfg, err := adminTLSConfig(st.AdminSSLCert, st.AdminSSLCertKey)
			if err != nil {
				return nil, fmt.Errorf("admin_listen %s: %w", l.Address(), err)
			}
			a.TLS = cfg
		}
		opts.Admin = append(opts.Admin, a)
	}
	opts.AdminHandler = admin.New(adminOptions(n, st))
	n.server = gateway.NewServer(gw, opts)
	return n, nil
}

// upstreamPool translates upstream_keepalive_pool_size (0: none kept) and
// upstream_keepalive_idle_timeout.
func upstreamPool(st *settings.Settings) gateway.UpstreamPool {
	p := gateway.UpstreamPool{Size: st.UpstreamKeepalivePoolSize, IdleTimeout: st.UpstreamKeepaliveIdleTimeout}
	if p.Size == 0 {
		p.Size = -1
	}
	return p
}

// gatewayHeaders translates the headers and headers_upstream settings.
func gatewayHeaders(st *settings.Settings) *gateway.Headers {
	h := st.Headers
	return &gateway.Headers{Server: h.Has(settings.HeaderServer), Via: h.Has(settings.HeaderVia),
		ProxyLatency: h.Has(settings.HeaderProxyLatency), UpstreamLatency: h.Has(settings.HeaderUpstreamLatency),
		ResponseLatency: h.Has(settings.HeaderResponseLatency), UpstreamStatus: h.Has(settings.HeaderUpstreamStatus),
		RequestID: h.Has(settings.HeaderRequestID), UpstreamRequestID: st.HeadersUpstream.Has(settings.HeaderRequestID)}
}

// metricsHandler serves the registry in the Prometheus text format.
func (n *node) metricsHandler() http.Handler {
	return promhttp.HandlerFor(n.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(n.logger.Handler(), slog.LevelError), Registry: n.registry})
}

// upstreamTLS reads upstream_tls_verify and upstream_tls_trusted_certificate
// (`system` and/or PEM files).
func upstreamTLS(st *settings.Settings) (gateway.UpstreamTLS, error) {
	t := gateway.UpstreamTLS{Insecure: !st.UpstreamTLSVerify}
	var files []string
	for _, src := range st.UpstreamTLSTrustedCertificate {
		if src != "system" {
			files = append(files, src)
		}
	}
	if len(files) == 0 {
		return t, nil // the system pool
	}
	pool := x509.NewCertPool()
	if slices.Contains(st.UpstreamTLSTrustedCertificate, "system") {
		sys, err := x509.SystemCertPool()
		if err != nil {
			return t, fmt.Errorf("upstream_tls_trusted_certificate: %w", err)
		}
		pool = sys
	}
	for _, f := range files {
		pem, err := os.ReadFile(f) // #nosec G304 -- a file named by upstream_tls_trusted_certificate
		if err != nil {
			return t, fmt.Errorf("upstream_tls_trusted_certificate: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return t, fmt.Errorf("upstream_tls_trusted_certificate: no certificate in %s", f)
		}
	}
	t.RootCAs = pool
	return t, nil
}

// adminTLSConfig is the admin `ssl` listener's configuration.
func adminTLSConfig(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" {
		return nil, errors.New("no admin_ssl_cert configured")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// close releases the node's store and caches.
func (n *node) close() {
	if n.store != nil {
		_ = n.store.Close()
	}
	_ = n.caches.Close()
}

// load reads the configuration — from the database, or the declarative
// document in DB-less mode — and swaps it in.
func (n *node) load() error {
	if n.store != nil {
		_, err := n.gw.LoadFrom(context.Background(), n.store, n.build)
		return err
	}
	var data []byte
	switch {
	case n.st.DeclarativeConfigString != "":
		data = []byte(n.st.DeclarativeConfigString)
	case n.st.DeclarativeConfig != "":
		var err error
		if data, err = os.ReadFile(n.st.DeclarativeConfig); err != nil {
			return fmt.Errorf("declarative_config: %w", err)
		}
	default:
		data = []byte(`_format_version: "3.0"`)
	}
	err := n.gw.LoadDeclarative(context.Background(), data, n.build)
	var de *config.DeclarativeError
	if errors.As(err, &de) {
		return fmt.Errorf("%s", strings.Join(append([]string{"declarative config is invalid:"}, de.Lines()...), "\n  "))
	}
	return err
}

// run serves until SIGINT/SIGTERM, reloading on SIGHUP; ready, if non-nil,
// is called once the listeners are bound.
func (n *node) run(ctx context.Context, ready func(addrs []string)) int {
	defer n.close()
	if n.store != nil {
		syncCtx, stopSync := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.gw.Sync(syncCtx, n.store, gateway.SyncOptions{Build: n.build, Debounce: n.st.DBUpdateDebounce,
				OnResult: func(rev int64, err error) {
					n.metrics.ConfigReloaded(rev, err)
					n.server.SetConfigError(err)
					if err != nil {
						n.logger.Error("configuration rebuild failed; keeping the running one", "revision", rev, "error", err)
					}
				}})
		}()
		defer func() { stopSync(); <-done }()
	}
	// Signals are caught before anything is announced: a SIGHUP right after
	// start reloads rather than kills.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := n.server.Start(); err != nil {
		n.logger.Error("startup failed", "error", err)
		return exitInvalid
	}
	if ready != nil {
		ready(n.server.Addresses())
	}
	n.logger.Info("datakit started", "version", version, "listeners", n.server.Addresses())
	for {
		select {
		case <-ctx.Done():
			return n.drain(sigs)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				err := n.load()
				var rev int64 // 0 in DB-less mode
				if snap := n.gw.Snapshot(); snap != nil {
					rev = snap.Revision()
				}
				n.metrics.ConfigReloaded(rev, err)
				if err != nil {
					n.logger.Error("reload failed; keeping the running configuration", "error", err)
					n.server.SetConfigError(err)
				} else {
					n.logger.Info("configuration reloaded")
					n.server.SetConfigError(nil)
				}
				continue
			}
			return n.drain(sigs)
		}
	}
}

// drain shuts down gracefully; a second signal exits at once (status 1).
func (n *node) drain(sigs <-chan os.Signal) int {
	n.logger.Info("draining")
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- n.server.Drain(ctx) }()
	for {
		select {
		case <-done: // aborted requests were counted and logged by Drain
			n.logger.Info("stopped")
			return exitOK
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				continue
			}
			cancel()
			n.server.Close()
			return exitInvalid
		}
	}
}
