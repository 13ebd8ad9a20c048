package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Sentinel conditions; the Admin API maps them to HTTP in admin/errors.go.
var (
	// ErrNotFound: no entity with that id or key (404).
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the database cannot be reached (503 "database
	// unreachable"). Wrapped together with the driver's error.
	ErrUnavailable = errors.New("database unreachable")
	// ErrDiskFull: the database refused a write for lack of space (503
	// "storage unavailable: disk full").
	ErrDiskFull = errors.New("storage unavailable: disk full")
	// ErrReadOnly: the database is read-only (503 "storage unavailable:
	// read-only database").
	ErrReadOnly = errors.New("storage unavailable: read-only database")
	// ErrConstraint: the database itself rejected a write on a constraint
	// the store's own checks did not catch. Writers are serialised and
	// checked first, so this signals a bug or a foreign writer.
	ErrConstraint = errors.New("constraint violation")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("store closed")
	// ErrCorrupt: the SQLite file is damaged (quick_check at open, or
	// SQLITE_CORRUPT); the store does not open it.
	ErrCorrupt = errors.New("database file is damaged")
)

// UniqueError is a unique constraint violation (409, code 5).
type UniqueError struct {
	Kind Kind
	// Fields are the unique fields and their values as Kong's "fields":
	// strings, nil, or {"id": "<uuid>"} for foreign keys.
	Fields map[string]any
	// Key is the Kong key notation of Fields:
	// {consumer=null,name="key-auth",route=null,service={id="…"}}.
	Key string
}

func (e *UniqueError) Error() string {
	return fmt.Sprintf("UNIQUE violation detected on '%s'", e.Key)
}

// PrimaryKeyError is an insert with an id already stored (409, code 3).
type PrimaryKeyError struct {
	Kind Kind
	ID   string
}

func (e *PrimaryKeyError) Error() string {
	return fmt.Sprintf("primary key violation on key '{id=%q}'", e.ID)
}

// ForeignKeyError is a reference to an entity that does not exist (400,
// code 4).
type ForeignKeyError struct {
	// Field is the referencing field ("service", "client_certificate").
	Field string
	// Parent is the referenced collection.
	Parent Kind
	ID     string
}

func (e *ForeignKeyError) Error() string {
	return fmt.Sprintf("the foreign key '{id=%q}' does not reference an existing '%s' entity.", e.ID, e.Parent)
}

// UnresolvedError is a reference by endpoint key that matches no entity
// (400, code 13).
type UnresolvedError struct {
	// Field is the referencing field ("service").
	Field string
	// KeyField is the parent's key field ("name", "username").
	KeyField string
	Value    string
	Parent   Kind
}

func (e *UnresolvedError) Error() string {
	return fmt.Sprintf("foreign key unresolved (%s.%s: the foreign key cannot be resolved with '{%s=%q}' for an existing '%s' entity)",
		e.Field, e.KeyField, e.KeyField, e.Value, e.Parent)
}

// ReferencedError refuses a delete while other entities reference the
// entity with RESTRICT (400, code 4, fields {"@referenced_by": By}).
type ReferencedError struct {
	Kind Kind
	By   Kind
}

func (e *ReferencedError) Error() string {
	return fmt.Sprintf("an existing '%s' entity references this '%s' entity", e.By, e.Kind)
}

// OffsetError is a list offset that is not one this package produced (400,
// code 7).
type OffsetError struct {
	Offset string
	Reason string
}

func (e *OffsetError) Error() string {
	return fmt.Sprintf("'%s' is not a valid offset: %s", e.Offset, e.Reason)
}

// SizeError is a page size outside 1–1000 (400, code 9).
type SizeError struct{ Size int }

func (e *SizeError) Error() string { return "size must be an integer between 1 and 1000" }

// LockedError: another process holds the SQLite database (§6.1).
type LockedError struct{ Path string }

func (e *LockedError) Error() string {
	return fmt.Sprintf("database file %s is in use by another datakit process", e.Path)
}

// SchemaVersionError: the database was migrated by a newer datakit (§6.4).
type SchemaVersionError struct {
	Database, Supported int
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this datakit supports (%d)", e.Database, e.Supported)
}

// keyNotation renders fields in Kong's key notation, keys sorted:
// {name="billing"}, {target="a:80",upstream={id="…"}}.
func keyNotation(fields map[string]any) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		switch v := fields[k].(type) {
		case nil:
			b.WriteString("null")
		case string:
			fmt.Fprintf(&b, "%q", v)
		case map[string]any:
			b.WriteString(keyNotation(v))
		default:
			fmt.Fprintf(&b, "%v", v)
		}
	}
	b.WriteByte('}')
	return b.String()
}
