// Package store persists the gateway's entities behind one Store contract
// (gateway.md §6.2) with two implementations over one SQL schema and one
// migration system: SQLite (modernc.org/sqlite, one node) and PostgreSQL
// (pgx, many nodes). It numbers every write transaction with a configuration
// revision and tells watchers about new revisions (local commits, LISTEN/NOTIFY
// and polling).
package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// Kind names an entity collection; the value is the table and the
// declarative collection name.
type Kind string

// The collections of §3, in the order a full import writes them (parents
// first).
const (
	Certificates       Kind = "certificates"
	Services           Kind = "services"
	Routes             Kind = "routes"
	Consumers          Kind = "consumers"
	Plugins            Kind = "plugins"
	Upstreams          Kind = "upstreams"
	Targets            Kind = "targets"
	SNIs               Kind = "snis"
	KeyauthCredentials Kind = "keyauth_credentials" // #nosec G101 -- a table name, not a credential
)

// Kinds lists every collection, parents before their children.
func Kinds() []Kind {
	return []Kind{Certificates, Services, Routes, Consumers, Plugins, Upstreams, Targets, SNIs, KeyauthCredentials}
}

// KindOf returns the collection of an entity pointer (*config.Service, …).
func KindOf(e any) (Kind, error) {
	switch e.(type) {
	case *config.Service:
		return Services, nil
	case *config.Route:
		return Routes, nil
	case *config.Consumer:
		return Consumers, nil
	case *config.Plugin:
		return Plugins, nil
	case *config.Upstream:
		return Upstreams, nil
	case *config.Target:
		return Targets, nil
	case *config.Certificate:
		return Certificates, nil
	case *config.SNI:
		return SNIs, nil
	case *config.KeyauthCredential:
		return KeyauthCredentials, nil
	}
	return "", fmt.Errorf("store: %T is not an entity pointer", e)
}

// Ref names one entity: a parent in list filters.
type Ref struct {
	Kind Kind
	ID   string
}

// Reader is what reads offer, inside and outside a write transaction.
// Entities come back as their canonical JSON (every field, keys sorted,
// foreign keys as {"id":…}); a Certificate's "snis" lists its SNI names.
type Reader interface {
	// Get finds an entity by id or, when ref is not UUID-shaped, by its
	// endpoint key (§3.1: name, username, instance_name, key). Targets
	// have no global key: use GetTarget. Missing: ErrNotFound.
	Get(ctx context.Context, kind Kind, ref string) (json.RawMessage, error)
	// GetBy finds an entity by one of its unique fields ("name",
	// "username", "custom_id", "instance_name", "key"). Missing:
	// ErrNotFound.
	GetBy(ctx context.Context, kind Kind, field, value string) (json.RawMessage, error)
	// GetTarget finds a Target of an Upstream by id or by its target
	// ("host:port"); a Target of another Upstream is ErrNotFound.
	GetTarget(ctx context.Context, upstreamID, ref string) (json.RawMessage, error)
	// List returns one page of a collection in id order.
	List(ctx context.Context, kind Kind, opts ListOptions) (Page, error)
}

// Tx is one write transaction (§6.5). Writes take entity pointers
// (*config.Service, …) decoded and validated by package config; the store
// resolves foreign keys given by endpoint key (ForeignKey.Key), checks
// foreign keys and uniqueness, stamps timestamps, and writes the results
// back into the entity so the caller can render it. A Tx is used by one
// goroutine and only inside the function given to Store.Tx.
type Tx interface {
	Reader
	// Revision is the configuration revision this transaction commits.
	Revision() int64
	// Insert creates an entity (POST). An empty id gets a random v4; an
	// existing id is a *PrimaryKeyError. created_at is kept when set, else
	// now; updated_at is now. A key-auth credential without key gets a
	// generated one. A Certificate's non-nil SNIs become its SNI entities.
	Insert(ctx context.Context, e any) error
	// Upsert creates or fully replaces the entity with the entity's id
	// (PUT); a replaced entity keeps its stored created_at unless one is
	// given. created reports whether the row is new.
	Upsert(ctx context.Context, e any) (created bool, err error)
	// Update replaces an existing entity by id (PATCH after the caller's
	// merge); ErrNotFound when it does not exist.
	Update(ctx context.Context, e any) error
	// Delete removes an entity by id or endpoint key; the database
	// cascades to its dependants (§3.9). Refused with *ReferencedError
	// while a RESTRICT reference exists; ErrNotFound when missing.
	Delete(ctx context.Context, kind Kind, ref string) error
}

// Store is the datastore contract of §6.2. Implementations are safe for
// concurrent use.
type Store interface {
	Reader
	// Tx runs fn in one write transaction. The transaction first takes the
	// next configuration revision, which also serialises all writers; it
	// commits when fn returns nil and returns that revision. A failed
	// transaction changes nothing and uses no revision.
	Tx(ctx context.Context, fn func(Tx) error) (revision int64, err error)
	// Import upserts every entity by id in one transaction, parents first,
	// deleting nothing (`datakit config import`, §5.6). Key-auth
	// credentials whose key is already stored update that row.
	Import(ctx context.Context, e *config.Entities) (revision int64, err error)
	// ReadAll reads every entity and the revision they belong to in one
	// consistent read (§6.6); collections are sorted by id.
	ReadAll(ctx context.Context) (*config.Entities, int64, error)
	// Revision is the current configuration revision (0 when never
	// written).
	Revision(ctx context.Context) (int64, error)
	// Watch delivers configuration revisions as they become known: local
	// commits, PostgreSQL notifications, and polls every PollInterval
	// (the first at once). A subscriber sees each revision at most once
	// and only increasing ones; a slow reader gets the latest. The channel
	// closes when ctx ends or the Store closes.
	Watch(ctx context.Context) <-chan int64
	// Reachable reports whether the last contact with the database (a
	// poll, a notification connection, a query) succeeded.
	Reachable() bool
	// Close stops watchers, closes connections and releases the SQLite
	// lock.
	Close() error
}

// ListOptions select a page of a collection. The zero value lists the first
// 100 entities of the whole collection.
type ListOptions struct {
	// Size is the page size, 1–1000; 0 means 100.
	Size int
	// Offset is the opaque cursor a previous Page returned as Next; empty
	// starts at the beginning.
	Offset string
	// Tags filters entities by tag (§4.6); empty means no filter.
	Tags []string
	// TagsAll requires every tag (`?tags=a,b`); false requires any
	// (`?tags=a/b`).
	TagsAll bool
	// Parent restricts the list to children of one entity: routes of a
	// service, plugins of a route/service/consumer, targets of an
	// upstream, SNIs of a certificate, credentials of a consumer. Nil
	// lists the whole collection.
	Parent *Ref
	// CustomID restricts consumers to the one with this custom_id.
	CustomID *string
}

// Page is one page of a list.
type Page struct {
	// Data holds the entities as canonical JSON, in id order.
	Data []json.RawMessage
	// Next is the offset of the following page; empty when no more
	// entities match.
	Next string
}

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)
