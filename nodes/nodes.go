// Package nodes implements the Datakit node types (one file each) and
// registers them with an engine.Registry. Node types decode their own
// attributes into typed structs at load time and run prepared, immutable
// values per request.
package nodes

import (
	"log/slog"
	"net/http"
	"time"
)

// Deps are the gateway settings and services node types are built with.
type Deps struct {
	// Version is datakit's version, sent as `User-Agent: datakit/<version>`
	// by call nodes. Zero value: "dev".
	Version string
	// Logger receives warnings of node types; zero value: slog.Default().
	Logger *slog.Logger
	// CallTransport, if non-nil, replaces the network for call nodes: it
	// returns the round tripper for the named node (offline runs and mocks).
	CallTransport func(node string) http.RoundTripper
	// MaxCallBodyBytes caps a call response body (datakit_max_body_size);
	// zero value: 10 MiB.
	MaxCallBodyBytes int64
	// JQTimeout bounds one jq evaluation (datakit_jq_timeout); zero value:
	// 1000 ms.
	JQTimeout time.Duration
}

func (d Deps) withDefaults() Deps {
	if d.Version == "" {
		d.Version = "dev"
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.MaxCallBodyBytes == 0 {
		d.MaxCallBodyBytes = 10 << 20
	}
	if d.JQTimeout == 0 {
		d.JQTimeout = time.Second
	}
	return d
}
