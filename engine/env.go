package engine

import "log/slog"

// Env is what a running node may use of its request. It is created per run of
// a plan and read concurrently by async nodes; only the scheduler writes it.
type Env struct {
	// Exchange is the request the plan runs against.
	Exchange Exchange
	// RequestID is the gateway's request id.
	RequestID string
	// Logger carries the request's attributes; never nil.
	Logger *slog.Logger

	exit exiter
}

// Exit ends the plan with r as the client response (spec §5.3). Only exit
// nodes call it, inline on the scheduler's goroutine.
func (e *Env) Exit(r *Response) { e.exit.setExit(r) }

// exiter receives exits: the Run (no allocation per request for a bound
// method value), or a function given to NewEnv.
type exiter interface{ setExit(*Response) }

type exitFunc func(*Response)

func (f exitFunc) setExit(r *Response) { f(r) }

// discardLogger is shared by runs without a logger; a Logger is immutable.
var discardLogger = slog.New(slog.DiscardHandler)

// NewEnv returns an Env whose Exit calls exit. The scheduler builds its own;
// node-type tests and offline tools use this.
func NewEnv(ex Exchange, requestID string, logger *slog.Logger, exit func(*Response)) *Env {
	if logger == nil {
		logger = discardLogger
	}
	return &Env{Exchange: ex, RequestID: requestID, Logger: logger, exit: exitFunc(exit)}
}
