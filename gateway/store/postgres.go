package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgresOptions configure OpenPostgres; they mirror the pg_* settings of
// gateway.md §2.2.
type PostgresOptions struct {
	// Host, Port: empty and zero mean 127.0.0.1 and 5432.
	Host string
	Port int
	// User and Database: empty means "datakit".
	User     string
	Password string
	Database string
	// Schema, when set, holds the tables (created if missing); empty
	// means the server's search_path.
	Schema string
	// SSL requires TLS; SSLVerify also verifies the server's certificate
	// and name.
	SSL, SSLVerify bool
	// Timeout bounds each connect and statement (pg_timeout); zero means
	// 5 s.
	Timeout time.Duration
	// MaxConnections sizes the pool (pg_max_connections); zero means 10.
	// Each Watch holds one more connection for LISTEN.
	MaxConnections int
	// PollInterval is db_update_frequency, the watchers' poll period;
	// zero means 1 s.
	PollInterval time.Duration
	// Now stamps entities and revisions; nil means time.Now.
	Now func() time.Time
	// Logger receives the watcher's warnings; nil discards them.
	Logger *slog.Logger
}

// notifyChannel carries revisions between nodes (§6.5 step 4).
const notifyChannel = "datakit_config"

// migrationLockKey is the advisory lock serialising migrations: "datakit"
// in ASCII.
const migrationLockKey int64 = 0x646174616b6974

// OpenPostgres connects, migrates and returns a PostgreSQL store. An
// unreachable server is ErrUnavailable.
func OpenPostgres(ctx context.Context, opts PostgresOptions) (Store, error) {
	cfg, err := pgConfig(opts)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	d := &pgDialect{db: db, connConfig: cfg.ConnConfig, schema: opts.Schema}
	release := func() error { pool.Close(); return nil }
	s := newSQLStore(d, db, db, opts.Now, opts.PollInterval, cfg.ConnConfig.ConnectTimeout, opts.Logger, release)
	if err := migrate(ctx, d, d.db, s.now); err != nil {
		_ = s.Close() // the migration error is the one to report
		return nil, fmt.Errorf("postgres %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return s, nil
}

// pgConfig builds the pool configuration from explicit options only.
func pgConfig(opts PostgresOptions) (*pgxpool.Config, error) {
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	port := opts.Port
	if port == 0 {
		port = 5432
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	sslmode := "disable"
	switch {
	case opts.SSL && opts.SSLVerify:
		sslmode = "verify-full"
	case opts.SSL:
		sslmode = "require"
	}
	kv := []string{
		"host=" + quoteDSN(def(opts.Host, "127.0.0.1")),
		"port=" + strconv.Itoa(port),
		"user=" + quoteDSN(def(opts.User, "datakit")),
		"dbname=" + quoteDSN(def(opts.Database, "datakit")),
		"sslmode=" + sslmode,
	}
	if opts.Password != "" {
		kv = append(kv, "password="+quoteDSN(opts.Password))
	}
	cfg, err := pgxpool.ParseConfig(strings.Join(kv, " "))
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	cfg.MaxConns = 10
	if opts.MaxConnections > 0 {
		cfg.MaxConns = int32(opts.MaxConnections) // #nosec G115 -- pg_max_connections is at most MaxInt32
	}
	cc := cfg.ConnConfig
	cc.ConnectTimeout = timeout
	cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(timeout.Milliseconds(), 10)
	dial := cc.DialFunc
	cc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &timeoutConn{Conn: c, timeout: timeout, active: time.Now()}, nil
	}
	cc.RuntimeParams["application_name"] = "datakit"
	if opts.Schema != "" {
		cc.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	return cfg, nil
}

// quoteDSN quotes a keyword/value connection string value.
func quoteDSN(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// timeoutConn fails a read that has waited pg_timeout since the
// connection last sent or received anything, and a write blocked that long.
// statement_timeout ends slow statements on the server, but not a call
// whose connection went silent — a black-holed network — and pgx has no
// read timeout of its own; it even repeats a read that timed out, so the
// deadline counts from the last activity, not from each read (hardening
// T41). Deadlines pgx sets itself (context cancellation) still apply when
// earlier.
type timeoutConn struct {
	net.Conn
	timeout time.Duration
	mu      sync.Mutex
	active  time.Time // last byte sent or received
	read    time.Time // deadlines set through the net.Conn methods
	write   time.Time
}

func (c *timeoutConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	d := earliest(c.read, c.active.Add(c.timeout))
	c.mu.Unlock()
	if err := c.Conn.SetReadDeadline(d); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *timeoutConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	d := earliest(c.write, time.Now().Add(c.timeout))
	c.mu.Unlock()
	if err := c.Conn.SetWriteDeadline(d); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *timeoutConn) touch() {
	c.mu.Lock()
	c.active = time.Now()
	c.mu.Unlock()
}

// earliest is the earlier of a set deadline (zero: none) and d.
func earliest(set, d time.Time) time.Time {
	if !set.IsZero() && set.Before(d) {
		return set
	}
	return d
}

func (c *timeoutConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.read, c.write = t, t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *timeoutConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.read = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *timeoutConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.write = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

type pgDialect struct {
	db         *sql.DB
	connConfig *pgx.ConnConfig
	schema     string
}

func (*pgDialect) classify(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	// A failed connect, whatever the server said (a refused login too),
	// leaves the node without its database.
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutdown, cannot connect now
			pgErr.Code == "57014": // statement_timeout (pg_timeout)
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		case strings.HasPrefix(pgErr.Code, "23"): // integrity constraint violation
			return fmt.Errorf("%w: %w", ErrConstraint, err)
		case pgErr.Code == "53100": // disk_full
			return fmt.Errorf("%w: %w", ErrDiskFull, err)
		case pgErr.Code == "25006": // read_only_sql_transaction
			return fmt.Errorf("%w: %w", ErrReadOnly, err)
		}
		return err
	}
	var netErr net.Error
	if errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, driver.ErrBadConn) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func (*pgDialect) readTx() *sql.TxOptions {
	return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
}

func (*pgDialect) notify(ctx context.Context, tx *sql.Tx, revision int64) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, strconv.FormatInt(revision, 10))
	return err
}

// migrationTx holds pg_advisory_xact_lock, released at the end of the
// transaction, so concurrent starts migrate one after the other.
func (d *pgDialect) migrationTx(ctx context.Context, fn func(q querier) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
		return err
	}
	if d.schema != "" {
		if _, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{d.schema}.Sanitize()); err != nil {
			return err
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// listen holds a dedicated connection on LISTEN until ctx ends (nil) or the
// connection fails (the error). It waits for notifications indefinitely,
// so it dials without timeoutConn.
func (d *pgDialect) listen(ctx context.Context, notified func(int64), connected func()) error {
	cfg := d.connConfig.Copy()
	cfg.DialFunc = (&net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 5 * time.Minute}).DialContext
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx) // nothing left to do with it
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if rev, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
			notified(rev)
		}
	}
}
