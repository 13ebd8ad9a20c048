package gateway

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ListenAddr is one listener to bind.
type ListenAddr struct {
	Address string // host:port
	TLS     *tls.Config
	// AwaitCertificate delays binding a TLS proxy listener until the
	// active snapshot holds a Certificate (gateway.md §2: an `ssl` entry
	// binds once a certificate exists, and stays bound).
	AwaitCertificate bool
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
	// Timeouts of every listener (gateway.md §10.1).
	ReadHeaderTimeout, IdleTimeout time.Duration
	// BodyTimeout (client_body_timeout) and SendTimeout
	// (client_send_timeout) are the longest pause between two body reads
	// and between two writes; BodyMaxDuration (client_body_max_duration)
	// caps reading a whole body. Zero values: 60 s, 60 s and 300 s.
	BodyTimeout, SendTimeout, BodyMaxDuration time.Duration
	MaxHeaderBytes                            int
	// HTTP2MaxConcurrentStreams bounds the streams, and so the running
	// handlers, of one HTTP/2 connection (zero value: 128).
	HTTP2MaxConcurrentStreams int
	// DrainDelay and DrainTimeout shape the drain (gateway.md §10.2).
	DrainDelay, DrainTimeout time.Duration
	Logger                   *slog.Logger
}

// Server runs a Gateway on its listeners: proxy and status. It owns the
// drain on shutdown.
type Server struct {
	g    *Gateway
	opts ServerOptions
	// mu guards servers, bound and pending: pending listeners bind on a
	// snapshot swap.
	mu       sync.Mutex
	servers  []*http.Server
	bound    []ListenerState
	pending  []ListenAddr
	draining atomic.Bool
	wg       sync.WaitGroup
	// ConfigError is the last failed reload, shown in /status.
	configError atomic.Pointer[string]
}

// ListenerState is one listener as /status shows it; Bound is false while
// a TLS proxy listener waits for a certificate.
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
	opts.BodyTimeout = cmp.Or(opts.BodyTimeout, 60*time.Second)
	opts.SendTimeout = cmp.Or(opts.SendTimeout, 60*time.Second)
	opts.BodyMaxDuration = cmp.Or(opts.BodyMaxDuration, 300*time.Second)
	opts.HTTP2MaxConcurrentStreams = cmp.Or(opts.HTTP2MaxConcurrentStreams, 128)
	return &Server{g: g, opts: opts}
}

// Start binds every listener and serves in the background. Any bind
// failure closes what was bound and is returned. TLS proxy listeners that
// await a certificate bind later, on the swap that brings one.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.opts.Proxy {
		if a.AwaitCertificate && !s.g.HasCertificates() {
			s.pending = append(s.pending, a)
			s.bound = append(s.bound, ListenerState{Address: a.Address, SSL: true})
			continue
		}
		if err := s.bind(a, nil, false); err != nil {
			s.closeAll()
			return err
		}
	}
	for _, a := range s.opts.Status {
		if err := s.bind(a, s.statusHandler(), false); err != nil {
			s.closeAll()
			return err
		}
	}
	if s.opts.AdminHandler != nil {
		for _, a := range s.opts.Admin {
			if err := s.bind(a, s.opts.AdminHandler, true); err != nil {
				s.closeAll()
				return err
			}
		}
	}
	if len(s.pending) > 0 {
		bind := s.bindPending
		s.g.onSwap.Store(&bind)
	}
	return nil
}

// bind listens on a and serves handler, or the proxy when handler is nil;
// admin marks the Admin API's listeners. s.mu is held.
func (s *Server) bind(a ListenAddr, handler http.Handler, admin bool) error {
	ln, err := net.Listen("tcp", a.Address)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.Address, err)
	}
	proxy := handler == nil
	if proxy {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		p, _ := strconv.Atoi(port)
		handler = s.g.Handler(Listener{Port: p, TLS: a.TLS != nil})
	}
	pace := pace{body: s.opts.BodyTimeout, send: s.opts.SendTimeout, bodyMax: s.opts.BodyMaxDuration}
	srv := &http.Server{Handler: pace.handler(handler), ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		IdleTimeout: s.opts.IdleTimeout, MaxHeaderBytes: s.opts.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelDebug)}
	if proxy {
		// Offered only where the TLS config lists h2 (ALPN); never h2c.
		srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: s.opts.HTTP2MaxConcurrentStreams,
			MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 1 << 20}
		// Shutdown does not wait for hijacked connections nor end
		// streams; the hook ends them and Drain waits (§10.2).
		srv.RegisterOnShutdown(s.g.streams.closeAll)
	}
	// net/http answers "OPTIONS *" itself, before any handler: the Admin
	// API's token check must see every request (§4.1).
	srv.DisableGeneralOptionsHandler = admin
	if a.TLS != nil {
		srv.TLSConfig = a.TLS
		ln = tls.NewListener(ln, a.TLS)
	}
	s.servers = append(s.servers, srv)
	state := ListenerState{Address: ln.Addr().String(), SSL: a.TLS != nil, Bound: true}
	if i := slices.IndexFunc(s.bound, func(l ListenerState) bool { return !l.Bound && l.Address == a.Address }); i >= 0 {
		s.bound[i] = state
	} else {
		s.bound = append(s.bound, state)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("listener stopped", "address", ln.Addr().String(), "error", err)
		}
	}()
	return nil
}

// bindPending binds the waiting TLS proxy listeners once the active
// snapshot has a certificate. A listener that fails to bind stays pending
// (unbound in /status) and is tried again on the next swap.
func (s *Server) bindPending() {
	if !s.g.HasCertificates() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return
	}
	left := s.pending[:0]
	for _, a := range s.pending {
		if err := s.bind(a, nil, false); err != nil {
			s.opts.Logger.Error("TLS proxy listener not bound", "address", a.Address, "error", err)
			left = append(left, a)
		}
	}
	s.pending = left
}

// Addresses are the bound addresses, proxy listeners first.
func (s *Server) Addresses() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
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
func (s *Server) Listeners() []ListenerState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bound)
}

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
	s.mu.Lock()
	servers := slices.Clone(s.servers)
	s.mu.Unlock()
	for _, srv := range servers {
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
		s.mu.Lock()
		s.closeAll()
		s.mu.Unlock()
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
func (s *Server) Close() {
	s.mu.Lock()
	s.closeAll()
	s.mu.Unlock()
	s.wg.Wait()
}

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
				"listeners":               s.Listeners(),
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
