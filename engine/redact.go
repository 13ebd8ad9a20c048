package engine

// Redact returns a copy of v with every object member named like a
// credential header (Authorization, Cookie, X-Api-Key, …) masked, as traces
// show values (spec §10). Tools that print what a graph did use it too.
func Redact(v any) any { return redact(v) }
