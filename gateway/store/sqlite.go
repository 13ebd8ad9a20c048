package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLiteOptions configure OpenSQLite.
type SQLiteOptions struct {
	// Path is the database file; empty means "./datakit.db". The lock is
	// Path + ".lock".
	Path string
	// PollInterval is db_update_frequency, the watchers' poll period;
	// zero means 1 s.
	PollInterval time.Duration
	// Now stamps entities and revisions; nil means time.Now.
	Now func() time.Time
	// Logger receives the watcher's warnings; nil discards them.
	Logger *slog.Logger
}

// sqlitePragmas apply to every connection (§6.3).
const sqlitePragmas = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"

// OpenSQLite opens (creating if needed) and migrates a SQLite store. It
// takes the file's lock first: a second process, or a second Open in this
// one, fails at once with *LockedError.
func OpenSQLite(ctx context.Context, opts SQLiteOptions) (Store, error) {
	path := opts.Path
	if path == "" {
		path = "./datakit.db"
	}
	unlock, err := lockFile(path+".lock", path)
	if err != nil {
		return nil, err
	}
	open := func(params string) (*sql.DB, error) {
		c, err := sqlite.NewConnector(path + "?" + params)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		return sql.OpenDB(c), nil
	}
	// One writing connection: writers queue in database/sql rather than
	// spin on SQLite's busy handler; BEGIN IMMEDIATE takes the write lock
	// before the first statement. Readers run beside it under WAL.
	writer, err := open(sqlitePragmas + "&_txlock=immediate")
	if err != nil {
		_ = unlock() // the open error is the one to report
		return nil, err
	}
	writer.SetMaxOpenConns(1)
	reader, err := open(sqlitePragmas)
	if err != nil {
		_ = writer.Close()
		_ = unlock() // as above
		return nil, err
	}
	reader.SetMaxOpenConns(4)
	d := &sqliteDialect{db: writer}
	release := func() error { return unlock() }
	s := newSQLStore(d, writer, reader, opts.Now, opts.PollInterval, 0, opts.Logger, release)
	if err := d.quickCheck(ctx); err != nil {
		_ = s.Close() // the check's error is the one to report
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := migrate(ctx, d, d.db, s.now); err != nil {
		_ = s.Close() // the migration error is the one to report
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

type sqliteDialect struct {
	db *sql.DB
}

// quickCheck runs PRAGMA quick_check (hardening §2.10): a damaged file is
// refused at start rather than served from or written to.
func (d *sqliteDialect) quickCheck(ctx context.Context) error {
	rows, err := d.db.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return fmt.Errorf("quick_check: %w", d.classify(err))
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("quick_check: %w", d.classify(err))
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("quick_check: %w", d.classify(err))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrCorrupt, strings.Join(problems, "; "))
	}
	return nil
}

func (*sqliteDialect) classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CONSTRAINT:
		return fmt.Errorf("%w: %w", ErrConstraint, err)
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	case sqlite3.SQLITE_READONLY:
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// readTx: a deferred read transaction sees one WAL snapshot from its first
// read to its end.
func (*sqliteDialect) readTx() *sql.TxOptions { return &sql.TxOptions{ReadOnly: true} }

func (*sqliteDialect) notify(context.Context, *sql.Tx, int64) error { return nil }

func (*sqliteDialect) listen(context.Context, func(int64), func()) error { return nil }

// migrationTx holds an exclusive transaction: no other connection reads or
// writes while the schema changes.
func (d *sqliteDialect) migrationTx(ctx context.Context, fn func(q querier) error) error {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		return err
	}
	if err := fn(conn); err != nil {
		_, rbErr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return errors.Join(err, rbErr)
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}
