package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FieldErrors is a tree of validation errors shaped like the input: a node
// holds messages for its own field, "@entity" messages for checks spanning
// several fields, and children by field name or 1-based array position.
// It renders as Kong's "fields" object (§4.7) and, nested per entity, as the
// declarative error tree (§5.4).
//
// The zero value is an empty tree; methods that only read accept a nil
// receiver.
type FieldErrors struct {
	messages []string
	// list renders messages as a JSON array even when there is one: the
	// datakit plugin's config errors are always an array (§9.8).
	list     bool
	entity   []string
	children map[string]*FieldErrors
}

// FieldError is one message of a tree with its dotted location
// ("paths.1", "config.key_names"); Path is empty for "@entity" messages.
type FieldError struct {
	Path    string
	Message string
}

// Field returns the child node for a field, creating it.
func (e *FieldErrors) Field(name string) *FieldErrors {
	if e.children == nil {
		e.children = make(map[string]*FieldErrors)
	}
	c, ok := e.children[name]
	if !ok {
		c = &FieldErrors{}
		e.children[name] = c
	}
	return c
}

// Index returns the child node for the zero-based array position i; it is
// keyed 1-based as Kong does.
func (e *FieldErrors) Index(i int) *FieldErrors {
	return e.Field(strconv.Itoa(i + 1))
}

// Add records a message for this node's field.
func (e *FieldErrors) Add(msg string) { e.messages = append(e.messages, msg) }

// Addf is Add with formatting.
func (e *FieldErrors) Addf(format string, args ...any) { e.Add(fmt.Sprintf(format, args...)) }

// AddList records messages that always render as an array, even one.
func (e *FieldErrors) AddList(msgs ...string) {
	e.messages = append(e.messages, msgs...)
	e.list = true
}

// AddEntity records a message about the entity as a whole ("@entity").
func (e *FieldErrors) AddEntity(msg string) { e.entity = append(e.entity, msg) }

// Merge adds every message of o into e at the same locations.
func (e *FieldErrors) Merge(o *FieldErrors) {
	if o == nil {
		return
	}
	e.messages = append(e.messages, o.messages...)
	e.list = e.list || o.list
	e.entity = append(e.entity, o.entity...)
	for _, k := range o.keys() {
		e.Field(k).Merge(o.children[k])
	}
}

// Empty reports whether the tree holds no message.
func (e *FieldErrors) Empty() bool { return e.Len() == 0 }

// Len counts the messages in the tree.
func (e *FieldErrors) Len() int {
	if e == nil {
		return 0
	}
	n := len(e.messages) + len(e.entity)
	for _, c := range e.children {
		n += c.Len()
	}
	return n
}

// anyField reports whether one of the named fields holds a message.
func (e *FieldErrors) anyField(names ...string) bool {
	for _, n := range names {
		if !e.children[n].Empty() {
			return true
		}
	}
	return false
}

// Err returns e as an error, or nil when it is empty; it saves callers from
// the typed-nil trap of returning an empty *FieldErrors as error.
func (e *FieldErrors) Err() error {
	if e.Empty() {
		return nil
	}
	return e
}

// keys lists the children that hold messages: "@entity"-first ordering is the
// caller's, here numeric keys sort numerically and others bytewise, so
// "paths.2" comes before "paths.10".
func (e *FieldErrors) keys() []string {
	ks := make([]string, 0, len(e.children))
	for k, c := range e.children {
		if !c.Empty() {
			ks = append(ks, k)
		}
	}
	slices.SortFunc(ks, compareKeys)
	return ks
}

func compareKeys(a, b string) int {
	ai, aerr := strconv.Atoi(a)
	bi, berr := strconv.Atoi(b)
	switch {
	case aerr == nil && berr == nil:
		return ai - bi
	case aerr == nil:
		return -1
	case berr == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// Flatten lists every message in Kong's order: "@entity" messages first, then
// fields alphabetically, depth first.
func (e *FieldErrors) Flatten() []FieldError {
	var out []FieldError
	e.flatten("", &out)
	return out
}

func (e *FieldErrors) flatten(prefix string, out *[]FieldError) {
	if e == nil {
		return
	}
	for _, m := range e.entity {
		*out = append(*out, FieldError{Path: prefix, Message: m})
	}
	for _, m := range e.messages {
		*out = append(*out, FieldError{Path: prefix, Message: m})
	}
	for _, k := range e.keys() {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		e.children[k].flatten(p, out)
	}
}

// Error renders Kong's schema violation message:
// "schema violation (host: required field missing)" or
// "2 schema violations (host: …; path: …)".
func (e *FieldErrors) Error() string {
	flat := e.Flatten()
	parts := make([]string, len(flat))
	for i, f := range flat {
		parts[i] = f.String()
	}
	if len(flat) == 1 {
		return "schema violation (" + parts[0] + ")"
	}
	return fmt.Sprintf("%d schema violations (%s)", len(flat), strings.Join(parts, "; "))
}

// String renders "path: message", or the message alone for "@entity".
func (f FieldError) String() string {
	if f.Path == "" {
		return f.Message
	}
	return f.Path + ": " + f.Message
}

// MarshalJSON renders the tree as Kong's "fields" value: a leaf is its message
// (or an array of them), an inner node an object with "@entity" and children.
func (e *FieldErrors) MarshalJSON() ([]byte, error) {
	return marshalJSON(e.jsonValue())
}

func (e *FieldErrors) jsonValue() any {
	if e == nil {
		return map[string]any{}
	}
	keys := e.keys()
	if len(keys) == 0 && len(e.entity) == 0 && len(e.messages) > 0 {
		if len(e.messages) == 1 && !e.list {
			return e.messages[0]
		}
		return slices.Clone(e.messages)
	}
	obj := make(map[string]any, len(keys)+1)
	if len(e.entity) > 0 {
		obj["@entity"] = slices.Clone(e.entity)
	}
	// A field holding both its own message and children (rare: a record that
	// is wrong as a whole and in parts) keeps its own messages under "@field".
	if len(e.messages) > 0 {
		obj["@field"] = slices.Clone(e.messages)
	}
	for _, k := range keys {
		obj[k] = e.children[k].jsonValue()
	}
	return obj
}

// marshalJSON encodes without HTML escaping: messages quote paths and regexes
// that read badly as \u003c.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DeclarativeError is an invalid declarative document (§5.4): the error tree
// shaped like the document, and one FlattenedError per failing entity.
type DeclarativeError struct {
	// Fields is the tree; entity errors sit at their entity's position
	// ("services" → "1" → "routes" → "2" → "paths" → "1").
	Fields *FieldErrors
	// Flattened lists the failing entities in document order; errors of no
	// entity (such as _format_version) are only in Fields.
	Flattened []FlattenedError
	// Parse is set when the text could not be decoded at all (syntax, size,
	// aliasing, nesting); Fields and Flattened are then empty.
	Parse error
}

// FlattenedError is one entity's errors in Kong's flatten_errors shape.
type FlattenedError struct {
	EntityType string `json:"entity_type"`
	// EntityName is the name (username for consumers); omitted when the
	// entity has none.
	EntityName string `json:"entity_name,omitempty"`
	// EntityID is the given or derived id; omitted when there is none.
	EntityID   string           `json:"entity_id,omitempty"`
	EntityTags []string         `json:"entity_tags,omitempty"`
	Entity     map[string]any   `json:"entity"`
	Errors     []FlattenedEntry `json:"errors"`
}

// FlattenedEntry is one message of a FlattenedError: type "field" with the
// dotted field, or type "entity".
type FlattenedEntry struct {
	Type    string `json:"type"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Error is the Admin API's message for code 14.
func (e *DeclarativeError) Error() string {
	if e.Parse != nil {
		return "failed parsing declarative configuration: " + e.Parse.Error()
	}
	b, err := e.Fields.MarshalJSON()
	if err != nil {
		return "declarative config is invalid"
	}
	return "declarative config is invalid: " + string(b)
}

// Unwrap exposes the parse error, so callers can match ErrDocumentTooLarge.
func (e *DeclarativeError) Unwrap() error { return e.Parse }

// Lines renders one line per error for `datakit config validate`:
// "in entry 1 of 'services': in entry 2 of 'routes': paths.1: should start with: …".
func (e *DeclarativeError) Lines() []string {
	if e.Parse != nil {
		return []string{e.Error()}
	}
	var out []string
	e.Fields.lines("", "", &out)
	return out
}

// lines walks the declarative tree: under a collection that nests at this
// level (top-level collections, a service's "routes", …), a numeric key is an
// entry, rendered "in entry N of 'x': "; everything else is an entity's dotted
// field path.
func (e *FieldErrors) lines(prefix, collection string, out *[]string) {
	for _, m := range e.entity {
		*out = append(*out, prefix+m)
	}
	for _, m := range e.messages {
		*out = append(*out, prefix+m)
	}
	for _, k := range e.keys() {
		c := e.children[k]
		if slices.Contains(nestedCollections[collection], k) && len(c.messages) == 0 && len(c.entity) == 0 {
			for _, n := range c.keys() {
				c.children[n].lines(fmt.Sprintf("%sin entry %s of '%s': ", prefix, n, k), k, out)
			}
			continue
		}
		for _, f := range c.Flatten() {
			p := k
			if f.Path != "" {
				p = k + "." + f.Path
			}
			*out = append(*out, prefix+p+": "+f.Message)
		}
	}
}

// joinedErrors lists the errors an errors.Join holds, or err alone.
func joinedErrors(err error) []error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		return j.Unwrap()
	}
	return []error{err}
}
