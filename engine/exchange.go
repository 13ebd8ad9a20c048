package engine

import "context"

// Exchange is the request a plan runs against, as the gateway (or the CLI's
// offline runner) provides it. The engine calls it from one goroutine at a
// time, except Property and SetProperty which only pure nodes call inline.
type Exchange interface {
	// Request returns a field of the client request (spec §4.1, request
	// fields: body, headers, query, path, raw_path, port, method, scheme,
	// version). Only the fields a plan reads are asked for; the body is
	// buffered only when asked.
	Request(ctx context.Context, field string) (any, error)
	// ServiceResponse returns a field of the upstream response (status,
	// headers, body, raw_body); only called in the response part.
	ServiceResponse(ctx context.Context, field string) (any, error)
	// ApplyServiceRequest merges the graph's changes into the upstream request.
	ApplyServiceRequest(m *Message) error
	// ApplyResponse merges the graph's changes into the client response of a
	// proxied request.
	ApplyResponse(m *Message) error
	// Property reads a property (spec §9); an unset one is nil.
	Property(name string) (any, error)
	// SetProperty writes a property and returns the value a property node
	// outputs (the authenticated consumer for kong.client.consumer, else v).
	SetProperty(name string, v any) (any, error)
}

// Message is a set of changes to an HTTP message: each nil member leaves that
// part unchanged.
type Message struct {
	// Headers merge into the message: each entry replaces all lines of that
	// header; an entry with nil Values removes it.
	Headers []HeaderLine
	// Query, if non-nil, replaces the whole query string (already encoded).
	Query *string
	// Body, if non-nil, replaces the body.
	Body *Body
}

// HeaderLine is one header of a written header map: a canonical name and its
// field lines in order; nil Values means "remove".
type HeaderLine struct {
	Name   string
	Values []string
}

// Body is an encoded body and the content type the engine derived for it;
// ContentType is empty when the body's type is to be left unchanged.
type Body struct {
	Bytes       []byte
	ContentType string
}

// Response is a complete response produced by an exit node.
type Response struct {
	Status  int
	Headers []HeaderLine
	Body    []byte
}
