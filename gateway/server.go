package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ListenAddr is one listener to bind.
type ListenAddr struct {
	Address string // host:port
	TLS     *tls.Config
}

// ServerOptions configure a Server (gateway.md §1.1, §10).
type ServerOptions struct {
	Proxy  []ListenAddr
	Status []ListenAddr
	// Admin listeners serve AdminHandler.
	Admin        []ListenAddr
	AdminHandler http.Handler
	// Metrics serves GET /metrics on the status listeners (gateway.md
	// §11.1); nil: no /metrics there.
	Metrics http.Handler
	// Timeouts of the proxy listeners (gateway.md §10.1).
	ReadHeaderTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                 int
	// DrainDelay and DrainTimeout shape the drain (gateway.md §10.2).
	DrainDelay, DrainTimeout time.Duration
	Logger                   *slog.Logger
}

// Server runs a Gateway on its listeners: proxy and status. It owns the
// drain on shutdown.
type Server struct {
	g        *Gateway
	opts     ServerOptions
	servers  []*http.Server
	bound    []ListenerState
	draining atomic.Bool
	wg       sync.WaitGroup
	// ConfigError is the last failed reload, shown in /status.
	configError atomic.Pointer[string]
}

// ListenerState is one bound listener.
type ListenerState struct {
	Address string `json:"address"`
	SSL     bool   `json:"ssl"`
	Bound   bool   `json:"bound"`
}

// NewServer prepares a server; Start binds it.
func NewServer(g *Gateway, opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{g: g, opts: opts}
}

// Start binds every listener and serves in the background. Any bind
// failure closes what was bound and is returned.
func (s *Server) Start() error {
	type bind struct {
		addr    ListenAddr
		handler http.Handler
		proxy   bool
		admin   bool
	}
	var binds []bind
	for _, a := range s.opts.Proxy {
		binds = append(binds, bind{a, nil, true, false})
	}
	for _, a := range s.opts.Status {
		binds = append(binds, bind{a, s.statusHandler(), false, false})
	}
	if s.opts.AdminHandler != nil {
		for _, a := range s.opts.Admin {
			binds = append(binds, bind{a, s.opts.AdminHandler, false, true})
		}
	}
	for _, b := range binds {
		ln, err := net.Listen("tcp", b.addr.Address)
		if err != nil {
			s.closeAll()
			return fmt.Errorf("listen %s: %w", b.addr.Address, err)
		}
		handler := b.handler
		if b.proxy {
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			p, _ := strconv.Atoi(port)
			handler = s.g.Handler(Listener{Port: p, TLS: b.addr.TLS != nil})
		}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
			IdleTimeout: s.opts.IdleTimeout, MaxHeaderBytes: s.opts.MaxHeaderBytes,
			ErrorLog: slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelDebug)}
		if b.proxy {
			// Shutdown does not wait for hijacked connections nor end
			// streams; the hook ends them and Drain waits (§10.2).
			srv.RegisterOnShutdown(s.g.streams.closeAll)
		}
		// net/http answers "OPTIONS *" itself, before any handler: the
		// Admin API's token check must see every request (§4.1).
		srv.DisableGeneralOptionsHandler = b.admin
		if b.addr.TLS != nil {
			srv.TLSConfig = b.addr.TLS
			ln = tls.NewListener(ln, b.addr.TLS)
		}
		s.servers = append(s.servers, srv)
		s.bound = append(s.bound, ListenerState{Address: ln.Addr().String(), SSL: b.addr.TLS != nil, Bound: true})
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.opts.Logger.Error("listener stopped", "address", ln.Addr().String(), "error", err)
			}
		}()
	}
	return nil
}

// Addresses are the bound addresses, proxy listeners first.
func (s *Server) Addresses() []string {
	out := make([]string, len(s.bound))
	for i, b := range s.bound {
		out[i] = b.Address
	}
	return out
}

func (s *Server) closeAll() {
	for _, srv := range s.servers {
		_ = srv.Close()
	}
}

// Draining reports whether the server is draining.
func (s *Server) Draining() bool { return s.draining.Load() }

// ConfigError is the last failed reload, or "".
func (s *Server) ConfigError() string {
	if p := s.configError.Load(); p != nil {
		return *p
	}
	return ""
}

// Listeners are the bound listeners as /status shows them.
func (s *Server) Listeners() []ListenerState { return s.bound }

// SetConfigError records the last failed reload (nil clears it).
func (s *Server) SetConfigError(err error) {
	if err == nil {
		s.configError.Store(nil)
		return
	}
	msg := err.Error()
	s.configError.Store(&msg)
}

// Drain stops the node gracefully (gateway.md §10.2): readiness turns 503,
// requests keep being served for DrainDelay, then listeners close,
// upgraded connections and event streams are told to end, and in-flight
// requests get up to DrainTimeout to finish. What is still running then is
// closed and counted: the error says how many requests were aborted.
func (s *Server) Drain(ctx context.Context) error {
	s.draining.Store(true)
	select {
	case <-time.After(s.opts.DrainDelay):
	case <-ctx.Done():
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.DrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var timedOut atomic.Bool
	for _, srv := range s.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if srv.Shutdown(ctx) != nil {
				timedOut.Store(true)
			}
		}()
	}
	wg.Wait()
	// Shutdown does not wait for the handlers of hijacked connections.
	if !s.waitIdle(ctx) {
		timedOut.Store(true)
	}
	var err error
	if timedOut.Load() {
		err = fmt.Errorf("drain timeout: %d requests aborted", s.g.inflight.Load())
		s.opts.Logger.Warn(err.Error())
		s.closeAll()
	}
	s.wg.Wait()
	return err
}

// drainPoll is how often waitIdle looks at the in-flight count.
const drainPoll = 10 * time.Millisecond

// waitIdle waits until no proxy request is in flight, or ctx ends (false).
func (s *Server) waitIdle(ctx context.Context) bool {
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for s.g.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// Close stops everything at once.
func (s *Server) Close() { s.closeAll(); s.wg.Wait() }

// statusHandler serves /status and /status/ready (gateway.md §4.9), and
// /metrics when there is a Metrics handler.
func (s *Server) statusHandler() http.Handler {
	mux := http.NewServeMux()
	if s.opts.Metrics != nil {
		mux.Handle("GET /metrics", s.opts.Metrics)
	}
	mux.HandleFunc("GET /status/ready", func(w http.ResponseWriter, r *http.Request) {
		switch snap := s.g.Snapshot(); {
		case s.draining.Load():
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "draining"})
		case snap == nil || snap.entities == nil || snap.entities.Count() == 0:
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "no configuration available (empty configuration present)"})
		default:
			writeJSON(w, http.StatusOK, map[string]any{"message": "ready"})
		}
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		hash, loaded := "00000000000000000000000000000000", any(nil)
		if snap := s.g.Snapshot(); snap != nil {
			if snap.hash != "" {
				hash = snap.hash
			}
			loaded = float64(snap.loadedAt.UnixMilli()) / 1000
		}
		var cfgErr any
		if p := s.configError.Load(); p != nil {
			cfgErr = *p
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"server":             map[string]any{"total_requests": s.g.total.Load(), "connections_active": s.g.inflight.Load()},
			"configuration_hash": hash,
			"datakit": map[string]any{
				"configuration_revision":  nil,
				"configuration_hash":      hash,
				"configuration_loaded_at": loaded,
				"configuration_error":     cfgErr,
				"draining":                s.draining.Load(),
				"listeners":               s.bound,
			},
		})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
