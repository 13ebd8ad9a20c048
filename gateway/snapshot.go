package gateway

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/datakit-gateway/datakit/gateway/balancer"
	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/router"
)

// Limits are the request limits the proxy applies (gateway.md §2.2).
type Limits struct {
	ClientBodyBufferLimit       int64
	UpstreamResponseBufferLimit int64
	ClientMaxBodySize           int64 // 0: unlimited
	MaxQueryArgs                int
	ClientMaxURISize            int
	// ClientMaxHeaderSize caps the request line and headers together;
	// ClientMaxHeaderLine one header field.
	ClientMaxHeaderSize int
	ClientMaxHeaderLine int
}

// DefaultLimits are the defaults of gateway.md §2.2.
func DefaultLimits() Limits {
	return Limits{
		ClientBodyBufferLimit:       8 << 20,
		UpstreamResponseBufferLimit: 32 << 20,
		MaxQueryArgs:                1000,
		ClientMaxURISize:            8 << 10,
		ClientMaxHeaderSize:         32 << 10,
		ClientMaxHeaderLine:         8 << 10,
	}
}

// Plugins are the plugins loaded on a node, by name. Build it once at start;
// read-only afterwards.
type Plugins struct {
	byName map[string]Plugin
	order  []Plugin // descending priority, ties by name descending
}

// NewPlugins returns the set of loaded plugins.
func NewPlugins(ps ...Plugin) *Plugins {
	p := &Plugins{byName: map[string]Plugin{}}
	for _, pl := range ps {
		p.byName[pl.Name()] = pl
		p.order = append(p.order, pl)
	}
	sort.SliceStable(p.order, func(i, j int) bool {
		a, b := p.order[i], p.order[j]
		if a.Priority() != b.Priority() {
			return a.Priority() > b.Priority()
		}
		return a.Name() > b.Name()
	})
	return p
}

// All are the loaded plugins in priority order.
func (p *Plugins) All() []Plugin { return append([]Plugin(nil), p.order...) }

// PluginSchema implements config.PluginSchemas.
func (p *Plugins) PluginSchema(name string) (config.PluginSchema, bool) {
	pl, ok := p.byName[name]
	if !ok {
		return config.PluginSchema{}, false
	}
	return pl.Schema(), true
}

// ValidatePluginConfig implements config.PluginSchemas by compiling the
// instance and discarding it.
func (p *Plugins) ValidatePluginConfig(cfg config.Plugin) (map[string]any, error) {
	pl, ok := p.byName[cfg.Name]
	if !ok {
		return nil, fmt.Errorf("plugin '%s' not enabled; add it to the 'plugins' configuration property", cfg.Name)
	}
	inst, err := pl.Compile(context.Background(), cfg, CompileEnv{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	if d, ok := inst.(interface{ Config() map[string]any }); ok {
		return d.Config(), nil
	}
	return cfg.Config, nil
}

// scopeKey identifies a plugin instance's scope: route, service and consumer
// ids ("" when unset).
type scopeKey struct{ route, service, consumer string }

// pluginSlot holds the enabled instances of one plugin, by scope.
type pluginSlot struct {
	plugin    Plugin
	instances map[scopeKey]*instance
}

type instance struct {
	cfg  *config.Plugin
	inst Instance
	slot *pluginSlot
	// protocols the instance applies to.
	http, https bool
}

// Snapshot is an immutable, compiled configuration (gateway.md §1.2). A
// request loads it once and uses it to the end.
type Snapshot struct {
	entities  *config.Entities
	router    *router.Router
	plugins   []*pluginSlot
	consumers struct {
		byID, byUsername, byCustomID map[string]*config.Consumer
	}
	upstreams map[string]*upstreamEntry // by lower-cased name
	// credentials are the key-auth credentials by key.
	credentials map[string]*config.KeyauthCredential
	limits      Limits
	// transports are the upstream transports by Service (gateway.md §8.9);
	// defaultTransport serves §7.8 routes.
	transports       map[*config.Service]*http.Transport
	transportsByKey  map[transportKey]*http.Transport
	defaultTransport *http.Transport
	// targetTransports check plugin-chosen targets (nil without a
	// TargetControl).
	targetTransports       map[*config.Service]*http.Transport
	defaultTargetTransport *http.Transport
	keysByTransport        map[*http.Transport]transportKey
	newTransport           func(transportKey) *http.Transport
	// variants are per-request variations of the Services' transports
	// (variantTransport).
	variantMu    sync.Mutex
	variants     map[transportKey]*http.Transport
	variantOrder []transportKey
	certs        certIndex
	hash         string
	revision     int64 // database revision; 0 in DB-less mode
	loadedAt     time.Time
}

// BuildOptions configure a snapshot build.
type BuildOptions struct {
	Plugins *Plugins
	Limits  Limits
	Hash    string
	Logger  *slog.Logger
	// UpstreamTLS is the node's upstream TLS policy; the zero value
	// verifies against the system roots.
	UpstreamTLS UpstreamTLS
	// UpstreamPool sizes the upstream idle pools; the zero value is 512
	// connections per address for 60 s.
	UpstreamPool UpstreamPool
	// TargetControl checks plugin-chosen targets when they are dialled; nil
	// checks nothing.
	TargetControl TargetControl
	// Previous is the snapshot being replaced: balancers of unchanged
	// Upstreams and transports (with their idle pools) carry over.
	Previous *Snapshot
}

// Build compiles entities into a snapshot: the router and every enabled
// plugin instance. Any error leaves nothing built.
func Build(ctx context.Context, e *config.Entities, opts BuildOptions) (*Snapshot, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Limits == (Limits{}) {
		opts.Limits = DefaultLimits()
	}
	s := &Snapshot{entities: e, limits: opts.Limits, hash: opts.Hash, loadedAt: time.Now(),
		upstreams: map[string]*upstreamEntry{}}
	s.consumers.byID = map[string]*config.Consumer{}
	s.consumers.byUsername = map[string]*config.Consumer{}
	s.consumers.byCustomID = map[string]*config.Consumer{}
	for i := range e.Consumers {
		c := &e.Consumers[i]
		s.consumers.byID[c.ID] = c
		if c.Username != nil {
			s.consumers.byUsername[*c.Username] = c
		}
		if c.CustomID != nil {
			s.consumers.byCustomID[*c.CustomID] = c
		}
	}
	s.credentials = make(map[string]*config.KeyauthCredential, len(e.KeyauthCredentials))
	for i := range e.KeyauthCredentials {
		c := &e.KeyauthCredentials[i]
		s.credentials[c.Key] = c
	}
	if err := s.buildUpstreams(e, opts.Previous); err != nil {
		return nil, err
	}
	r, err := buildRouter(e)
	if err != nil {
		return nil, err
	}
	s.router = r
	s.buildCerts(e, opts.Previous)
	s.buildTransports(e, upstreamEnv{tls: opts.UpstreamTLS, control: opts.TargetControl, pool: opts.UpstreamPool}, opts.Previous)
	if err := s.compilePlugins(ctx, e, opts); err != nil {
		return nil, err
	}
	return s, nil
}

func buildRouter(e *config.Entities) (*router.Router, error) {
	services := map[string]*router.Service{}
	for i := range e.Services {
		svc := &e.Services[i]
		rs := &router.Service{Disabled: !svc.Enabled, Handle: svc}
		if svc.Path != nil {
			rs.Path = *svc.Path
		}
		services[svc.ID] = rs
	}
	routes := make([]router.Route, 0, len(e.Routes))
	for i := range e.Routes {
		rt := &e.Routes[i]
		r := router.Route{ID: rt.ID, CreatedAt: rt.CreatedAt, Protocols: rt.Protocols, Methods: rt.Methods,
			Hosts: rt.Hosts, Paths: rt.Paths, Headers: rt.Headers, SNIs: rt.SNIs,
			RegexPriority: int64(rt.RegexPriority), StripPath: rt.StripPath, Handle: rt}
		if rt.Name != nil {
			r.Name = *rt.Name
		}
		if rt.Service != nil {
			r.Service = services[rt.Service.ID]
		}
		routes = append(routes, r)
	}
	return router.New(routes)
}

func (s *Snapshot) compilePlugins(ctx context.Context, e *config.Entities, opts BuildOptions) error {
	if opts.Plugins == nil {
		return nil
	}
	slots := map[string]*pluginSlot{}
	var errs []error
	for i := range e.Plugins {
		cfg := &e.Plugins[i]
		if !cfg.Enabled {
			continue
		}
		pl, ok := opts.Plugins.byName[cfg.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("plugins[%s]: plugin '%s' not enabled", cfg.ID, cfg.Name))
			continue
		}
		inst, err := pl.Compile(ctx, *cfg, CompileEnv{Logger: opts.Logger.With("plugin", cfg.Name, "plugin_id", cfg.ID)})
		if err != nil {
			errs = append(errs, fmt.Errorf("plugins[%s] (%s): %w", cfg.ID, cfg.Name, err))
			continue
		}
		slot := slots[cfg.Name]
		if slot == nil {
			slot = &pluginSlot{plugin: pl, instances: map[scopeKey]*instance{}}
			slots[cfg.Name] = slot
		}
		in := &instance{cfg: cfg, inst: inst, slot: slot}
		for _, p := range cfg.Protocols {
			in.http = in.http || p == "http"
			in.https = in.https || p == "https"
		}
		slot.instances[scopeOf(cfg)] = in
	}
	for _, pl := range opts.Plugins.order {
		if slot := slots[pl.Name()]; slot != nil {
			s.plugins = append(s.plugins, slot)
		}
	}
	return errors.Join(errs...)
}

func scopeOf(p *config.Plugin) scopeKey {
	var k scopeKey
	if p.Route != nil {
		k.route = p.Route.ID
	}
	if p.Service != nil {
		k.service = p.Service.ID
	}
	if p.Consumer != nil {
		k.consumer = p.Consumer.ID
	}
	return k
}

// Scope masks in precedence order (gateway.md §3.5): Route+Service+Consumer,
// Route+Consumer, Service+Consumer, Route+Service, Consumer, Route, Service,
// global.
const (
	scopeR = 1 << iota
	scopeS
	scopeC
)

var scopePrecedence = [...]int{scopeR | scopeS | scopeC, scopeR | scopeC, scopeS | scopeC, scopeR | scopeS, scopeC, scopeR, scopeS, 0}

// lookup returns the most specific instance for (route, service, consumer).
func (slot *pluginSlot) lookup(route, service, consumer string) *instance {
	for _, m := range scopePrecedence {
		var k scopeKey
		if m&scopeR != 0 {
			if route == "" {
				continue
			}
			k.route = route
		}
		if m&scopeS != 0 {
			if service == "" {
				continue
			}
			k.service = service
		}
		if m&scopeC != 0 {
			if consumer == "" {
				continue
			}
			k.consumer = consumer
		}
		if in := slot.instances[k]; in != nil {
			return in
		}
	}
	return nil
}

func (s *Snapshot) findConsumer(id, username, customID string) *config.Consumer {
	if c := s.consumers.byID[id]; id != "" && c != nil {
		return c
	}
	if c := s.consumers.byUsername[username]; username != "" && c != nil {
		return c
	}
	if c := s.consumers.byCustomID[customID]; customID != "" && c != nil {
		return c
	}
	return nil
}

func (s *Snapshot) upstream(name string) *upstreamEntry { return s.upstreams[strings.ToLower(name)] }

// LoadedAt is when the snapshot was built.
func (s *Snapshot) LoadedAt() time.Time { return s.loadedAt }

// Hash is the configuration hash the snapshot was built from.
func (s *Snapshot) Hash() string { return s.hash }

// Entities are the snapshot's entities (read-only).
func (s *Snapshot) Entities() *config.Entities { return s.entities }

// Instances yields every compiled plugin instance, in no particular order.
func (s *Snapshot) Instances() iter.Seq[Instance] {
	return func(yield func(Instance) bool) {
		for _, slot := range s.plugins {
			for _, in := range slot.instances {
				if !yield(in.inst) {
					return
				}
			}
		}
	}
}

// TargetHealth is one Target's state as kong_upstream_target_health shows
// it (gateway.md §11.1).
type TargetHealth struct {
	Upstream string // the Upstream's name
	Target   string // the Target's target, host:port
	// DNSError: the last try of the Target failed to resolve its host.
	DNSError bool
}

// TargetHealth lists the Targets of every Upstream, by Upstream name, then
// in the Upstream's Target order.
func (s *Snapshot) TargetHealth() []TargetHealth {
	var out []TargetHealth
	for _, name := range slices.Sorted(maps.Keys(s.upstreams)) {
		u := s.upstreams[name]
		for i, t := range u.names {
			out = append(out, TargetHealth{Upstream: u.cfg.Name, Target: t, DNSError: u.bal.Unresolved(i)})
		}
	}
	return out
}

// upstreamEntry is an Upstream with its balancer.
type upstreamEntry struct {
	cfg     *config.Upstream
	targets []balancer.Target
	names   []string // the Targets' target fields, in targets order
	bal     *balancer.Balancer
}

// buildUpstreams makes one balancer per Upstream, keeping the previous
// snapshot's balancer (and its state) where nothing changed.
func (s *Snapshot) buildUpstreams(e *config.Entities, prev *Snapshot) error {
	byID := map[string]*upstreamEntry{}
	for i := range e.Upstreams {
		u := &e.Upstreams[i]
		entry := &upstreamEntry{cfg: u}
		byID[u.ID] = entry
		s.upstreams[strings.ToLower(u.Name)] = entry
	}
	for _, t := range e.Targets {
		if t.Upstream == nil || byID[t.Upstream.ID] == nil {
			continue
		}
		host, port := splitHost(t.Target, 8000)
		entry := byID[t.Upstream.ID]
		entry.targets = append(entry.targets, balancer.Target{Host: host, Port: port, Weight: t.Weight})
		entry.names = append(entry.names, t.Target)
	}
	var errs []error
	for name, entry := range s.upstreams {
		cfg := balancer.Config{Algorithm: entry.cfg.Algorithm, Slots: entry.cfg.Slots}
		if prev != nil {
			if old := prev.upstreams[name]; old != nil && old.bal.Same(cfg, entry.targets) {
				entry.bal = old.bal
				continue
			}
		}
		bal, err := balancer.New(cfg, entry.targets)
		if err != nil {
			errs = append(errs, fmt.Errorf("upstreams %q: %w", entry.cfg.Name, err))
			continue
		}
		entry.bal = bal
	}
	return errors.Join(errs...)
}
