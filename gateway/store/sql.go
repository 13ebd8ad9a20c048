package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// querier is what *sql.DB, *sql.Tx and *sql.Conn have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// dialect holds what differs between the engines; the SQL text does not.
type dialect interface {
	// classify turns a driver error into this package's typed errors
	// (wrapping the original) or returns it unchanged.
	classify(err error) error
	// readTx are the options of a consistent read (§6.6).
	readTx() *sql.TxOptions
	// notify announces a revision inside the writing transaction
	// (delivered at commit); a no-op without cross-process notification.
	notify(ctx context.Context, tx *sql.Tx, revision int64) error
	// migrationTx runs fn in a transaction holding the migration lock.
	migrationTx(ctx context.Context, fn func(q querier) error) error
	// listen delivers notified revisions until ctx ends; nil when the
	// engine has none. connected is called after each (re)connection.
	listen(ctx context.Context, notified func(int64), connected func()) error
}

// sqlStore is the Store over database/sql shared by both engines.
type sqlStore struct {
	d      dialect
	writer *sql.DB // write transactions and migrations
	reader *sql.DB // reads; may be writer
	now    func() time.Time
	poll   time.Duration
	log    *slog.Logger
	// acquire bounds taking a connection (pg_timeout); zero: unbounded.
	acquire time.Duration

	hub       hub
	reachable atomic.Bool

	closeOnce sync.Once
	closing   chan struct{}
	// mu orders starting a watcher against Close's wait for them.
	mu       sync.Mutex
	closed   bool
	watchers sync.WaitGroup
	// release closes the engine's resources after the databases.
	release func() error
}

var _ Store = (*sqlStore)(nil)

func newSQLStore(d dialect, writer, reader *sql.DB, now func() time.Time, poll, acquire time.Duration, log *slog.Logger, release func() error) *sqlStore {
	if now == nil {
		now = time.Now
	}
	if poll <= 0 {
		poll = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &sqlStore{d: d, writer: writer, reader: reader, now: now, poll: poll, log: log, acquire: acquire,
		closing: make(chan struct{}), release: release}
	s.hub.subs = map[*subscriber]struct{}{}
	s.reachable.Store(true)
	return s
}

// fail classifies a driver error and records an unreachable database.
func (s *sqlStore) fail(err error) error {
	if err == nil {
		return nil
	}
	err = s.d.classify(err)
	if errors.Is(err, ErrUnavailable) {
		s.reachable.Store(false)
	}
	return err
}

func (s *sqlStore) Reachable() bool { return s.reachable.Load() }

// conn takes a connection from db within s.acquire. Taking one may ping an
// idle connection and dial new ones, each bounded by pg_timeout; the bound
// keeps their sum within it too, so a call on an unreachable database
// answers within pg_timeout (hardening T41). Statements on the connection
// are bounded by the dialect (statement_timeout, timeoutConn).
func (s *sqlStore) conn(ctx context.Context, db *sql.DB) (*sql.Conn, error) {
	actx := ctx
	if s.acquire > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, s.acquire)
		defer cancel()
	}
	c, err := db.Conn(actx)
	if err != nil {
		if ctx.Err() == nil && actx.Err() != nil && !errors.Is(err, ErrUnavailable) {
			s.reachable.Store(false)
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil, s.fail(err)
	}
	return c, nil
}

// read runs fn in a read-only transaction.
func (s *sqlStore) read(ctx context.Context, opts *sql.TxOptions, fn func(r *reader) error) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	c, err := s.conn(ctx, s.reader)
	if err != nil {
		return err
	}
	defer c.Close()
	tx, err := c.BeginTx(ctx, opts)
	if err != nil {
		return s.fail(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to undo
	if err := fn(&reader{q: tx, s: s}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.fail(err)
	}
	s.reachable.Store(true)
	return nil
}

func (s *sqlStore) Get(ctx context.Context, kind Kind, ref string) (out json.RawMessage, err error) {
	err = s.read(ctx, &sql.TxOptions{ReadOnly: true}, func(r *reader) error {
		out, err = r.Get(ctx, kind, ref)
		return err
	})
	return out, err
}

func (s *sqlStore) GetBy(ctx context.Context, kind Kind, field, value string) (out json.RawMessage, err error) {
	err = s.read(ctx, &sql.TxOptions{ReadOnly: true}, func(r *reader) error {
		out, err = r.GetBy(ctx, kind, field, value)
		return err
	})
	return out, err
}

func (s *sqlStore) GetTarget(ctx context.Context, upstreamID, ref string) (out json.RawMessage, err error) {
	err = s.read(ctx, &sql.TxOptions{ReadOnly: true}, func(r *reader) error {
		out, err = r.GetTarget(ctx, upstreamID, ref)
		return err
	})
	return out, err
}

func (s *sqlStore) List(ctx context.Context, kind Kind, opts ListOptions) (p Page, err error) {
	err = s.read(ctx, &sql.TxOptions{ReadOnly: true}, func(r *reader) error {
		p, err = r.List(ctx, kind, opts)
		return err
	})
	return p, err
}

func (s *sqlStore) Revision(ctx context.Context) (int64, error) {
	c, err := s.conn(ctx, s.reader)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var rev int64
	if err := c.QueryRowContext(ctx, `SELECT revision FROM config_revision WHERE id = 1`).Scan(&rev); err != nil {
		return 0, s.fail(err)
	}
	s.reachable.Store(true)
	return rev, nil
}

func (s *sqlStore) Tx(ctx context.Context, fn func(Tx) error) (int64, error) {
	select {
	case <-s.closing:
		return 0, ErrClosed
	default:
	}
	c, err := s.conn(ctx, s.writer)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return 0, s.fail(err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback() // the cause is already being returned
		}
	}()
	now := s.now()
	// First statement: the row lock on config_revision serialises writers,
	// so the checks below see every committed write (§6.5 step 1).
	var rev int64
	err = tx.QueryRowContext(ctx,
		`UPDATE config_revision SET revision = revision + 1, updated_at = $1 WHERE id = 1 RETURNING revision`,
		now.Unix()).Scan(&rev)
	if err != nil {
		return 0, s.fail(err)
	}
	t := &sqlTx{reader: reader{q: tx, s: s}, tx: tx, rev: rev, now: now}
	err = fn(t)
	t.done = true
	if err != nil {
		return 0, err
	}
	if err := s.d.notify(ctx, tx, rev); err != nil {
		return 0, s.fail(err)
	}
	if err := tx.Commit(); err != nil {
		return 0, s.fail(err)
	}
	committed = true
	s.reachable.Store(true)
	s.hub.publish(rev)
	return rev, nil
}

func (s *sqlStore) Import(ctx context.Context, e *config.Entities) (int64, error) {
	// Copies: the caller's entities stay as they were given.
	lists := []any{
		slices.Clone(e.Certificates), slices.Clone(e.Services), slices.Clone(e.Routes),
		slices.Clone(e.Consumers), slices.Clone(e.Plugins), slices.Clone(e.Upstreams),
		slices.Clone(e.Targets), slices.Clone(e.SNIs), slices.Clone(e.KeyauthCredentials),
	}
	return s.Tx(ctx, func(tx Tx) error {
		t := tx.(*sqlTx)
		for _, list := range lists {
			if err := eachEntity(list, func(v any) error {
				_, err := t.write(ctx, v, modeImport)
				return err
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// eachEntity calls fn with a pointer to every element of a slice of
// entities.
func eachEntity(list any, fn func(v any) error) error {
	each := func(n int, at func(i int) any) error {
		for i := range n {
			if err := fn(at(i)); err != nil {
				return err
			}
		}
		return nil
	}
	switch l := list.(type) {
	case []config.Certificate:
		return each(len(l), func(i int) any { return &l[i] })
	case []config.Service:
		return each(len(l), func(i int) any { return &l[i] })
	case []config.Route:
		return each(len(l), func(i int) any { return &l[i] })
	case []config.Consumer:
		return each(len(l), func(i int) any { return &l[i] })
	case []config.Plugin:
		return each(len(l), func(i int) any { return &l[i] })
	case []config.Upstream:
		return each(len(l), func(i int) any { return &l[i] })
	case []config.Target:
		return each(len(l), func(i int) any { return &l[i] })
	case []config.SNI:
		return each(len(l), func(i int) any { return &l[i] })
	case []config.KeyauthCredential:
		return each(len(l), func(i int) any { return &l[i] })
	}
	return fmt.Errorf("store: %T is not a list of entities", list)
}

func (s *sqlStore) ReadAll(ctx context.Context) (*config.Entities, int64, error) {
	var (
		out config.Entities
		rev int64
	)
	err := s.read(ctx, s.d.readTx(), func(r *reader) error {
		if err := r.q.QueryRowContext(ctx, `SELECT revision FROM config_revision WHERE id = 1`).Scan(&rev); err != nil {
			return s.fail(err)
		}
		targets := []any{&out.Certificates, &out.Services, &out.Routes, &out.Consumers, &out.Plugins,
			&out.Upstreams, &out.Targets, &out.SNIs, &out.KeyauthCredentials}
		for i, kind := range Kinds() {
			if err := r.scanAll(ctx, kind, targets[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	names := map[string][]string{}
	for _, sn := range out.SNIs {
		if sn.Certificate != nil {
			names[sn.Certificate.ID] = append(names[sn.Certificate.ID], sn.Name)
		}
	}
	for i := range out.Certificates {
		c := &out.Certificates[i]
		c.SNIs = append([]string{}, names[c.ID]...)
		slices.Sort(c.SNIs)
	}
	return &out, rev, nil
}

// scanAll decodes a whole table, in id order, into *[]T.
func (r *reader) scanAll(ctx context.Context, kind Kind, dst any) error {
	rows, err := r.q.QueryContext(ctx, `SELECT entity FROM `+string(kind)+` ORDER BY id`)
	if err != nil {
		return r.s.fail(err)
	}
	defer rows.Close()
	var buf strings.Builder
	buf.WriteByte('[')
	n := 0
	for rows.Next() {
		var ent string
		if err := rows.Scan(&ent); err != nil {
			return r.s.fail(err)
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(ent)
		n++
	}
	if err := rows.Err(); err != nil {
		return r.s.fail(err)
	}
	buf.WriteByte(']')
	if n == 0 {
		return nil
	}
	if err := json.Unmarshal([]byte(buf.String()), dst); err != nil {
		return fmt.Errorf("decode %s: %w", kind, err)
	}
	return sortEntities(dst)
}

// sortEntities orders a decoded collection by id with Go's byte order, the
// order package config produces, whatever the database's collation.
func sortEntities(dst any) error {
	by := func(a, b string) int { return strings.Compare(a, b) }
	switch l := dst.(type) {
	case *[]config.Certificate:
		slices.SortFunc(*l, func(a, b config.Certificate) int { return by(a.ID, b.ID) })
	case *[]config.Service:
		slices.SortFunc(*l, func(a, b config.Service) int { return by(a.ID, b.ID) })
	case *[]config.Route:
		slices.SortFunc(*l, func(a, b config.Route) int { return by(a.ID, b.ID) })
	case *[]config.Consumer:
		slices.SortFunc(*l, func(a, b config.Consumer) int { return by(a.ID, b.ID) })
	case *[]config.Plugin:
		slices.SortFunc(*l, func(a, b config.Plugin) int { return by(a.ID, b.ID) })
	case *[]config.Upstream:
		slices.SortFunc(*l, func(a, b config.Upstream) int { return by(a.ID, b.ID) })
	case *[]config.Target:
		slices.SortFunc(*l, func(a, b config.Target) int { return by(a.ID, b.ID) })
	case *[]config.SNI:
		slices.SortFunc(*l, func(a, b config.SNI) int { return by(a.ID, b.ID) })
	case *[]config.KeyauthCredential:
		slices.SortFunc(*l, func(a, b config.KeyauthCredential) int { return by(a.ID, b.ID) })
	default:
		return fmt.Errorf("store: %T is not a list of entities", dst)
	}
	return nil
}

func (s *sqlStore) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.closing)
		s.mu.Unlock()
		s.watchers.Wait()
		var errs []error
		if s.reader != s.writer {
			errs = append(errs, s.reader.Close())
		}
		errs = append(errs, s.writer.Close())
		if s.release != nil {
			errs = append(errs, s.release())
		}
		err = errors.Join(errs...)
	})
	return err
}
