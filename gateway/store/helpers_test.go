package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"

	"github.com/datakit-gateway/datakit/gateway/config"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dropTestDatabase()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// pg is the PostgreSQL database this test run creates (once, on first
// use) and TestMain drops.
var pg struct {
	once     sync.Once
	user     string
	database string
	err      error
}

func pgAdminDSN(user, db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=5432 user=%s dbname=%s sslmode=disable connect_timeout=3", user, db)
}

// testDatabase creates this run's database, connecting as postgres or root
// (trust auth) to the existing database "test".
func testDatabase(t *testing.T) (user, database string) {
	t.Helper()
	pg.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var errs []string
		for _, u := range []string{"postgres", "root"} {
			conn, err := pgx.Connect(ctx, pgAdminDSN(u, "test"))
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			name := "datakit_store_test_" + randomHex(6)
			_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
			conn.Close(ctx) //nolint:errcheck // test cleanup
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			pg.user, pg.database = u, name
			return
		}
		pg.err = fmt.Errorf("%s", strings.Join(errs, "; "))
	})
	if pg.err != nil {
		if os.Getenv("DATAKIT_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("PostgreSQL at 127.0.0.1:5432 required (DATAKIT_TEST_REQUIRE_SERVICES=1): %v", pg.err)
		}
		t.Skipf("PostgreSQL at 127.0.0.1:5432 unreachable, skipping (set DATAKIT_TEST_REQUIRE_SERVICES=1 to fail): %v", pg.err)
	}
	return pg.user, pg.database
}

func dropTestDatabase() {
	if pg.database == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgAdminDSN(pg.user, "test"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "drop %s: %v\n", pg.database, err)
		return
	}
	defer conn.Close(ctx) //nolint:errcheck // test cleanup
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pg.database+" WITH (FORCE)"); err != nil {
		fmt.Fprintf(os.Stderr, "drop %s: %v\n", pg.database, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // never fails
	return hex.EncodeToString(b)
}

// harness is one test's private database on one engine: a SQLite file, or
// a PostgreSQL schema in the run's database.
type harness struct {
	engine string
	open   func(t *testing.T, poll time.Duration) (Store, error)
	// raw opens the same database without the store (no lock, no
	// migrations) for checks and tampering.
	raw func(t *testing.T) *sql.DB
}

// mustOpen opens the harness's store and closes it when the test ends.
func (h *harness) mustOpen(t *testing.T) Store {
	t.Helper()
	s, err := h.open(t, 0)
	if err != nil {
		t.Fatalf("open %s: %v", h.engine, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var engines = []string{"sqlite", "postgres"}

// forEachEngine runs fn once per engine, each with a fresh database.
func forEachEngine(t *testing.T, fn func(t *testing.T, h *harness)) {
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			fn(t, newHarness(t, eng))
		})
	}
}

func newHarness(t *testing.T, engine string) *harness {
	t.Helper()
	switch engine {
	case "sqlite":
		path := filepath.Join(t.TempDir(), "datakit.db")
		return &harness{
			engine: engine,
			open: func(t *testing.T, poll time.Duration) (Store, error) {
				return OpenSQLite(context.Background(), SQLiteOptions{Path: path, PollInterval: poll})
			},
			raw: func(t *testing.T) *sql.DB {
				db, err := sql.Open("sqlite", path+"?"+sqlitePragmas)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			},
		}
	case "postgres":
		user, database := testDatabase(t)
		schema := "t_" + randomHex(6)
		return &harness{
			engine: engine,
			open: func(t *testing.T, poll time.Duration) (Store, error) {
				return OpenPostgres(context.Background(), PostgresOptions{
					User: user, Database: database, Schema: schema, PollInterval: poll, MaxConnections: 4,
				})
			},
			raw: func(t *testing.T) *sql.DB {
				cfg, err := pgx.ParseConfig(pgAdminDSN(user, database) + " search_path=" + schema)
				if err != nil {
					t.Fatal(err)
				}
				db := stdlib.OpenDB(*cfg)
				t.Cleanup(func() { db.Close() })
				return db
			},
		}
	}
	t.Fatalf("unknown engine %q", engine)
	return nil
}

// testSchemas loads key-auth (which forbids consumer), prometheus and
// datakit, each config kept as given.
type testSchemas struct{}

func (testSchemas) PluginSchema(name string) (config.PluginSchema, bool) {
	switch name {
	case "key-auth":
		return config.PluginSchema{NoConsumer: true}, true
	case "prometheus", "datakit":
		return config.PluginSchema{}, true
	}
	return config.PluginSchema{}, false
}

func (testSchemas) ValidatePluginConfig(p config.Plugin) (map[string]any, error) {
	if p.Config == nil {
		return map[string]any{}, nil
	}
	return p.Config, nil
}

// Entity builders decode through package config, so stored entities carry
// the same defaults as real ones.

func decoded[T any](t *testing.T, v T, errs *config.FieldErrors) *T {
	t.Helper()
	if err := errs.Err(); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	return &v
}

func newService(t *testing.T, name string, extra ...any) *config.Service {
	in := map[string]any{"name": name, "host": name + ".test"}
	addExtra(in, extra)
	v, errs := config.DecodeService(in)
	return decoded(t, v, errs)
}

func newRoute(t *testing.T, name, serviceID string, extra ...any) *config.Route {
	in := map[string]any{"name": name, "paths": []any{"/" + name}}
	if serviceID != "" {
		in["service"] = map[string]any{"id": serviceID}
	}
	addExtra(in, extra)
	v, errs := config.DecodeRoute(in)
	return decoded(t, v, errs)
}

func newConsumer(t *testing.T, username string, extra ...any) *config.Consumer {
	in := map[string]any{"username": username}
	addExtra(in, extra)
	v, errs := config.DecodeConsumer(in)
	return decoded(t, v, errs)
}

func newPlugin(t *testing.T, name string, extra ...any) *config.Plugin {
	in := map[string]any{"name": name}
	addExtra(in, extra)
	v, errs := config.DecodePlugin(in, testSchemas{})
	return decoded(t, v, errs)
}

func newUpstream(t *testing.T, name string, extra ...any) *config.Upstream {
	in := map[string]any{"name": name}
	addExtra(in, extra)
	v, errs := config.DecodeUpstream(in)
	return decoded(t, v, errs)
}

func newTarget(t *testing.T, upstreamID, target string, extra ...any) *config.Target {
	in := map[string]any{"target": target, "upstream": map[string]any{"id": upstreamID}}
	addExtra(in, extra)
	v, errs := config.DecodeTarget(in)
	return decoded(t, v, errs)
}

func newKeyauth(t *testing.T, consumerID, key string) *config.KeyauthCredential {
	in := map[string]any{"consumer": map[string]any{"id": consumerID}}
	if key != "" {
		in["key"] = key
	}
	v, errs := config.DecodeKeyauthCredential(in)
	return decoded(t, v, errs)
}

// newCertificate skips PEM validation: the store does not look inside.
func newCertificate(snis ...string) *config.Certificate {
	return &config.Certificate{Cert: "-----BEGIN CERTIFICATE-----", Key: "-----BEGIN PRIVATE KEY-----", SNIs: snis}
}

func newSNI(t *testing.T, name, certID string) *config.SNI {
	v, errs := config.DecodeSNI(map[string]any{"name": name, "certificate": map[string]any{"id": certID}})
	return decoded(t, v, errs)
}

// addExtra sets key/value pairs: addExtra(in, []any{"tags", []any{"a"}}).
func addExtra(in map[string]any, kv []any) {
	for i := 0; i+1 < len(kv); i += 2 {
		in[kv[i].(string)] = kv[i+1]
	}
}

func tags(ts ...string) []any {
	out := make([]any, len(ts))
	for i, s := range ts {
		out[i] = s
	}
	return out
}

// write runs fn in one transaction and fails the test on error.
func write(t *testing.T, s Store, fn func(ctx context.Context, tx Tx) error) int64 {
	t.Helper()
	ctx := context.Background()
	rev, err := s.Tx(ctx, func(tx Tx) error { return fn(ctx, tx) })
	if err != nil {
		t.Fatalf("Tx: %v", err)
	}
	return rev
}

// insert writes entities in one transaction.
func insert(t *testing.T, s Store, es ...any) int64 {
	t.Helper()
	return write(t, s, func(ctx context.Context, tx Tx) error {
		for _, e := range es {
			if err := tx.Insert(ctx, e); err != nil {
				return fmt.Errorf("insert %T: %w", e, err)
			}
		}
		return nil
	})
}

// field decodes one top-level field of an entity's JSON.
func field(t *testing.T, raw json.RawMessage, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return m[name]
}

func jsonOf(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
