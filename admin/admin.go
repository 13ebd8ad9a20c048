package admin

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/datakit-gateway/datakit/admin/graphui"
	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/graphrun"
)

// CompatibleVersion is the Kong version the Admin API reports (§4.9); decK
// and go-kong pick their behaviour from it.
const CompatibleVersion = "3.11.0"

// DefaultMaxBodySize is admin_max_body_size's default (10m).
const DefaultMaxBodySize = 10 << 20

// Node is the running gateway as the Admin API sees it. cmd/datakit adapts
// *gateway.Gateway (and the server owning its listeners) to it.
type Node interface {
	// Active returns the entities of the active snapshot and its
	// configuration hash; nil entities when no snapshot is active. The
	// entities are read-only.
	Active() (*config.Entities, string)
	// LoadDeclarative decodes, validates and compiles a declarative
	// document and swaps it in (database = off). Document problems are a
	// *config.DeclarativeError; on any error the running configuration
	// stays.
	LoadDeclarative(ctx context.Context, doc []byte) error
	// Status reports the node's state for /status and /status/ready.
	Status() Status
}

// Status is a node's state as /status shows it (§4.9).
type Status struct {
	// Server holds Kong's proxy connection counters.
	Server ServerStatus
	// Revision is the active configuration revision (DB modes); ignored
	// with database = off, where it shows as null.
	Revision int64
	// Hash is the active configuration hash; empty shows EmptyHash.
	Hash string
	// LoadedAt is when the active snapshot was swapped in; zero is null.
	LoadedAt time.Time
	// ConfigError is the last failed rebuild; empty is null.
	ConfigError string
	// Draining is true once the node drains (§10.2): not ready.
	Draining bool
	// Ready is true once a snapshot is active. With database = off an
	// empty configuration is not ready either (§4.9).
	Ready bool
	// Empty is true when the active snapshot holds no entity.
	Empty bool
	// DatabaseReachable is the last poll's verdict (DB modes).
	DatabaseReachable bool
	// Listeners are the node's proxy and status listeners.
	Listeners []Listener
}

// ServerStatus are Kong's connection counters of the proxy.
type ServerStatus struct {
	ConnectionsAccepted int64 `json:"connections_accepted"`
	ConnectionsActive   int64 `json:"connections_active"`
	ConnectionsHandled  int64 `json:"connections_handled"`
	ConnectionsReading  int64 `json:"connections_reading"`
	ConnectionsWriting  int64 `json:"connections_writing"`
	ConnectionsWaiting  int64 `json:"connections_waiting"`
	TotalRequests       int64 `json:"total_requests"`
}

// Listener is one bound listener as /status lists it.
type Listener struct {
	Address string `json:"address"`
	SSL     bool   `json:"ssl"`
	Bound   bool   `json:"bound"`
}

// PluginInfo describes a plugin loaded on the node (GET /, /plugins/enabled,
// /schemas/plugins/{name}).
type PluginInfo struct {
	Name     string
	Version  string
	Priority int
	// Schema is the plugin's config schema in Kong's record format
	// ({"type":"record","fields":[…]}); nil uses the bundled schema this
	// package knows for the name, else an empty record.
	Schema []byte
}

// Options configure the Admin API. Node is required; every other zero value
// is documented.
type Options struct {
	// Database is the database setting: "off", "sqlite" or "postgres";
	// empty means "off".
	Database string
	// Node is the running gateway.
	Node Node
	// Store is the datastore of the DB modes (a store.Store); unused with
	// Database "off".
	Store Store
	// Plugins validates plugin configurations (cmd passes its
	// *gateway.Plugins); nil means no plugin is loaded.
	Plugins config.PluginSchemas
	// LoadedPlugins are the plugins loaded on this node, in any order.
	LoadedPlugins []PluginInfo
	// Configuration is the settings as GET / shows them
	// ((*settings.Settings).Public()); router_flavor and role are added.
	Configuration map[string]any
	// NodeID is the node's id; Hostname its host name (empty: os.Hostname).
	NodeID, Hostname string
	// Version is datakit's version (datakit_version).
	Version string
	// ServerHeader is the Server response header ("datakit/1.2.3"); empty
	// sends none (headers without server_tokens).
	ServerHeader string
	// LatencyHeader adds X-Kong-Admin-Latency (headers with
	// latency_tokens).
	LatencyHeader bool
	// AdminToken is admin_token; empty means no token (§4.1).
	AdminToken string
	// AllowedHosts are admin_allowed_hosts: Host values accepted without a
	// token besides localhost and IP literals.
	AllowedHosts []string
	// GUIOrigins are admin_gui_origin: origins (scheme://host[:port])
	// granted CORS and cross-site writes.
	GUIOrigins []string
	// MaxBodySize caps request bodies in bytes; zero means
	// DefaultMaxBodySize.
	MaxBodySize int64
	// Logger receives unexpected errors; nil discards them.
	Logger *slog.Logger
	// Now stamps entities written in DB modes; nil means time.Now.
	Now func() time.Time
	// Graphs compiles datakit plugin configurations for the graph
	// endpoints (§4.11); nil answers them 404 for every plugin.
	Graphs Graphs
	// GraphLiveCalls is the destination policy graph runs with
	// `live_calls: true` send their unmocked call nodes under; nil refuses
	// live calls (400).
	GraphLiveCalls *graphrun.Live
	// Metrics serves GET /metrics (Prometheus text format); nil leaves the
	// path unserved until the node exports metrics.
	Metrics http.Handler
}

// api holds the handlers' shared, read-only state; the only mutable part is
// the /config load lock.
type api struct {
	opts      Options
	dbless    bool
	plugins   []PluginInfo // sorted by name
	endpoints []string     // path templates, sorted
	viewer    *graphui.Viewer
	// loading is held while a POST /config runs: a concurrent one gets
	// 429 instead of queueing.
	loading sync.Mutex
}

// New returns the Admin API handler.
func New(opts Options) http.Handler {
	if opts.Database == "" {
		opts.Database = "off"
	}
	if opts.MaxBodySize <= 0 {
		opts.MaxBodySize = DefaultMaxBodySize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &api{opts: opts, dbless: opts.Database == "off", viewer: graphui.New()}
	a.plugins = slices.Clone(opts.LoadedPlugins)
	slices.SortFunc(a.plugins, func(x, y PluginInfo) int {
		if x.Name < y.Name {
			return -1
		}
		if x.Name > y.Name {
			return 1
		}
		return 0
	})
	r := chi.NewRouter()
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { a.fail(w, r, errNotFound) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) { a.fail(w, r, errMethodNotAllowed) })
	a.routes(&table{r: r, a: a})
	slices.Sort(a.endpoints)
	return a.protect(r)
}

// methods maps HTTP methods to the handlers of one path.
type methods map[string]http.HandlerFunc

// table registers paths on the router and remembers their templates for
// GET /endpoints.
type table struct {
	r chi.Router
	a *api
}

// handle registers one path. chi only matches the path: the method is
// dispatched here so HEAD, OPTIONS and 405 with Allow are uniform.
func (t *table) handle(pattern string, ms methods) {
	t.a.endpoints = append(t.a.endpoints, pattern)
	if g, ok := ms[http.MethodGet]; ok {
		if _, ok := ms[http.MethodHead]; !ok {
			ms[http.MethodHead] = g
		}
	}
	allow := make([]string, 0, len(ms)+1)
	for m := range ms {
		allow = append(allow, m)
	}
	allow = append(allow, http.MethodOptions)
	slices.Sort(allow)
	allowed := joinComma(allow)
	t.r.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := ms[r.Method]; ok {
			h(w, r)
			return
		}
		if r.Method == http.MethodOptions {
			w.Header().Set("Allow", allowed)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Allow", allowed)
		t.a.fail(w, r, errMethodNotAllowed)
	}))
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}
