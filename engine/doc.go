// Package engine is the Datakit dataflow language: it decodes a graph
// configuration, validates it (collecting every error with its location),
// type-checks and expands its connections, compiles it into an immutable Plan
// split into an access part and a response part, runs a Plan per request with a
// concurrent scheduler, records debug traces and writes deterministic DOT.
//
// The engine knows nothing of HTTP servers, jq, Redis or plugins: node kinds are
// registered in a Registry by package nodes, and the request a plan runs against
// is reached through the Exchange interface that the gateway implements.
package engine
