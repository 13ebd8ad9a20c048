package engine

import "log/slog"

// temporary: replaced by the engine's own DecodeAttrs at merge
//
// DecodeAttrs decodes one node's attributes with k, as the engine does at
// load time: it calls k.Decode, then reports every key no getter read as
// `unknown field` (the common node fields of spec §2.3 excepted), and returns
// the declaration with the located errors.
func DecodeAttrs(loc string, values map[string]any, k Kind) (*Decl, []error) {
	var errs []error
	a := newAttrs(loc, "", values, &errs, nil)
	d := k.Decode(a)
	a.unknown(func(key string) bool {
		switch key {
		case "type", "name", "input", "inputs", "output", "outputs":
			return true
		}
		return false
	})
	return d, errs
}

// temporary: replaced by the engine's own NewEnv at merge
//
// NewEnv returns the Env of one run of a plan; exit receives an exit node's
// response.
func NewEnv(ex Exchange, requestID string, logger *slog.Logger, exit func(*Response)) *Env {
	if logger == nil {
		logger = slog.Default()
	}
	return &Env{Exchange: ex, RequestID: requestID, Logger: logger, exit: exit}
}
