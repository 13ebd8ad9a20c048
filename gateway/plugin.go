package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// Plugin is a bundled plugin (gateway.md §9.1): it compiles a configured
// instance once per snapshot build.
type Plugin interface {
	Name() string
	Priority() int
	Version() string
	Schema() config.PluginSchema
	// Compile validates cfg.Config (filling defaults) and returns an
	// immutable Instance. Its errors are violations under `config`.
	Compile(ctx context.Context, cfg config.Plugin, env CompileEnv) (Instance, error)
}

// CompileEnv is what a plugin may use while compiling an instance.
type CompileEnv struct {
	Logger *slog.Logger
}

// Instance is a compiled plugin instance. It implements any of the handler
// interfaces below and is safe for concurrent use.
type Instance any

// AccessHandler runs before proxying.
type AccessHandler interface {
	Access(ctx context.Context, ex *Exchange) error
}

// ResponseHandler runs after the upstream response headers (and body, when
// needed) arrived, before anything is sent to the client.
type ResponseHandler interface {
	Response(ctx context.Context, ex *Exchange) error
}

// HeaderFilterHandler runs before the response headers are written.
type HeaderFilterHandler interface {
	HeaderFilter(ctx context.Context, ex *Exchange) error
}

// LogHandler runs after the last byte; it must not block.
type LogHandler interface {
	Log(rec *LogRecord)
}

// BodyNeeder asks for the client request body to be buffered before access.
type BodyNeeder interface {
	NeedsRequestBody() bool
}

// ResponseBodyNeeder tells, after access, whether a ResponseHandler needs the
// upstream body buffered; a ResponseHandler without it always does.
type ResponseBodyNeeder interface {
	NeedsResponseBody(ex *Exchange) bool
}

// LogRecord is the read-only summary of a finished request.
type LogRecord struct {
	RequestID string
	Method    string
	Path      string
	Status    int
	Route     *config.Route
	Service   *config.Service
	Consumer  *config.Consumer
	ClientIP  string
	Source    string // service, exit or error
	Started   time.Time
	// Latencies: whole request, upstream (first try to response headers),
	// gateway (the rest).
	Latency, UpstreamLatency, GatewayLatency time.Duration
	BytesIn, BytesOut                        int64
	Tries                                    int
}
