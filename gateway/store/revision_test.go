package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/gateway/config"
)

func TestPagination(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		s := h.mustOpen(t)
		ctx := context.Background()
		var all []string
		write(t, s, func(ctx context.Context, tx Tx) error {
			for i := range 25 {
				c := newConsumer(t, fmt.Sprintf("user-%02d", i))
				if err := tx.Insert(ctx, c); err != nil {
					return err
				}
				all = append(all, c.ID)
			}
			return nil
		})
		sort.Strings(all)
		for _, size := range []int{1, 5, 10, 24, 25, 26} {
			var got []string
			offset := ""
			pages := 0
			for {
				p, err := s.List(ctx, Consumers, ListOptions{Size: size, Offset: offset})
				if err != nil {
					t.Fatalf("List(size %d, offset %q) = %v", size, offset, err)
				}
				pages++
				if len(p.Data) > size || (p.Next != "" && len(p.Data) != size) {
					t.Fatalf("size %d: page of %d, next %q", size, len(p.Data), p.Next)
				}
				for _, raw := range p.Data {
					got = append(got, field(t, raw, "id").(string))
				}
				if p.Next == "" {
					break
				}
				offset = p.Next
			}
			if !slices.Equal(got, all) {
				t.Errorf("size %d: listed %v, want %v in id order", size, got, all)
			}
			if want := (25 + size - 1) / size; pages != want {
				t.Errorf("size %d: %d pages, want %d", size, pages, want)
			}
		}
		p, err := s.List(ctx, Consumers, ListOptions{})
		if err != nil || len(p.Data) != 25 || p.Next != "" {
			t.Errorf("List(default) = %d, next %q, %v", len(p.Data), p.Next, err)
		}
		var se *SizeError
		for _, size := range []int{-1, 1001} {
			if _, err := s.List(ctx, Consumers, ListOptions{Size: size}); !errors.As(err, &se) {
				t.Errorf("List(size %d) = %v, want *SizeError", size, err)
			}
		}
		var oe *OffsetError
		if _, err := s.List(ctx, Consumers, ListOptions{Offset: "%%%"}); !errors.As(err, &oe) ||
			oe.Error() != "'%%%' is not a valid offset: bad base64 encoding" {
			t.Errorf("List(bad offset) = %v", err)
		}
		if _, err := s.List(ctx, Consumers, ListOptions{Offset: EncodeOffset("x")}); !errors.As(err, &oe) {
			t.Errorf("List(offset without id) = %v, want *OffsetError", err)
		}
	})
}

func TestListParents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		s := h.mustOpen(t)
		ctx := context.Background()
		a, b := newService(t, "a"), newService(t, "b")
		c := newConsumer(t, "alice")
		up := newUpstream(t, "u.internal")
		insert(t, s, a, b, c, up)
		insert(t, s, newRoute(t, "a1", a.ID), newRoute(t, "a2", a.ID), newRoute(t, "b1", b.ID),
			newPlugin(t, "key-auth", "service", map[string]any{"id": a.ID}),
			newPlugin(t, "prometheus", "consumer", map[string]any{"id": c.ID}),
			newPlugin(t, "prometheus"),
			newKeyauth(t, c.ID, ""), newKeyauth(t, c.ID, ""),
			newTarget(t, up.ID, "10.0.0.1"), newTarget(t, up.ID, "10.0.0.2"), newTarget(t, up.ID, "10.0.0.3"))
		cases := []struct {
			kind   Kind
			parent Ref
			want   int
		}{
			{Routes, Ref{Services, a.ID}, 2},
			{Routes, Ref{Services, b.ID}, 1},
			{Plugins, Ref{Services, a.ID}, 1},
			{Plugins, Ref{Consumers, c.ID}, 1},
			{KeyauthCredentials, Ref{Consumers, c.ID}, 2},
			{Targets, Ref{Upstreams, up.ID}, 3},
		}
		for _, tc := range cases {
			p, err := s.List(ctx, tc.kind, ListOptions{Parent: &tc.parent})
			if err != nil || len(p.Data) != tc.want {
				t.Errorf("List(%s of %s) = %d, %v; want %d", tc.kind, tc.parent.Kind, len(p.Data), err, tc.want)
			}
		}
		if _, err := s.List(ctx, Targets, ListOptions{Parent: &Ref{Services, a.ID}}); err == nil {
			t.Errorf("List(targets of a service) succeeded")
		}
	})
}

func TestTagFilters(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		s := h.mustOpen(t)
		ctx := context.Background()
		byName := map[string]string{}
		write(t, s, func(ctx context.Context, tx Tx) error {
			for i, tg := range [][]string{{"a"}, {"a", "b"}, {"b"}, nil, {"c"}, {"a", "b", "c"}} {
				extra := []any{}
				if tg != nil {
					extra = []any{"tags", tags(tg...)}
				}
				svc := newService(t, fmt.Sprintf("s%d", i), extra...)
				if err := tx.Insert(ctx, svc); err != nil {
					return err
				}
				byName[svc.ID] = *svc.Name
			}
			return nil
		})
		cases := []struct {
			tags []string
			all  bool
			want []string
		}{
			{[]string{"a"}, true, []string{"s0", "s1", "s5"}},
			{[]string{"a", "b"}, true, []string{"s1", "s5"}},
			{[]string{"a", "b"}, false, []string{"s0", "s1", "s2", "s5"}},
			{[]string{"c", "a"}, false, []string{"s0", "s1", "s4", "s5"}},
			{[]string{"a", "b", "c"}, true, []string{"s5"}},
			{[]string{"zzz"}, false, nil},
		}
		for _, tc := range cases {
			for _, size := range []int{1, 2, 100} {
				var got []string
				offset := ""
				for {
					p, err := s.List(ctx, Services, ListOptions{Size: size, Offset: offset, Tags: tc.tags, TagsAll: tc.all})
					if err != nil {
						t.Fatal(err)
					}
					for _, raw := range p.Data {
						got = append(got, byName[field(t, raw, "id").(string)])
					}
					if p.Next == "" {
						break
					}
					offset = p.Next
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.want) {
					t.Errorf("tags %v all=%v size %d: %v, want %v", tc.tags, tc.all, size, got, tc.want)
				}
			}
		}
	})
}

func TestRevision(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		s := h.mustOpen(t)
		ctx := context.Background()
		rev := func() int64 {
			t.Helper()
			r, err := s.Revision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := rev(); r != 0 {
			t.Fatalf("fresh revision = %d, want 0", r)
		}
		// Three writes, one transaction, one revision.
		got := insert(t, s, newService(t, "a"), newService(t, "b"), newConsumer(t, "c"))
		if got != 1 || rev() != 1 {
			t.Errorf("Tx = %d, Revision = %d; want 1", got, rev())
		}
		// A failing function rolls back its writes and the revision.
		boom := errors.New("boom")
		var seen int64
		_, err := s.Tx(ctx, func(tx Tx) error {
			seen = tx.Revision()
			if err := tx.Insert(ctx, newService(t, "x")); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) || seen != 2 {
			t.Errorf("Tx = %v (revision inside %d), want boom at 2", err, seen)
		}
		if _, err := s.Get(ctx, Services, "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("service of a failed Tx: %v", err)
		}
		if r := rev(); r != 1 {
			t.Errorf("revision after failure = %d, want 1", r)
		}
		// A constraint failure too.
		if _, err := s.Tx(ctx, func(tx Tx) error { return tx.Insert(ctx, newService(t, "a")) }); err == nil {
			t.Errorf("duplicate insert succeeded")
		}
		if got := insert(t, s, newService(t, "c")); got != 2 || rev() != 2 {
			t.Errorf("next Tx = %d, Revision = %d; want 2", got, rev())
		}
		// The Tx is unusable after its function returns.
		var kept Tx
		write(t, s, func(ctx context.Context, tx Tx) error { kept = tx; return nil })
		if err := kept.Insert(ctx, newService(t, "late")); err == nil {
			t.Errorf("Insert after the transaction ended succeeded")
		}
	})
}

func TestReadAllConsistency(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		s := h.mustOpen(t)
		ctx := context.Background()
		const writes = 25
		var wg sync.WaitGroup
		wg.Add(1)
		errc := make(chan error, 1)
		go func() {
			defer wg.Done()
			for i := range writes {
				_, err := s.Tx(ctx, func(tx Tx) error {
					svc := newService(t, fmt.Sprintf("s%d", i))
					if err := tx.Insert(ctx, svc); err != nil {
						return err
					}
					return tx.Insert(ctx, newRoute(t, fmt.Sprintf("r%d", i), svc.ID))
				})
				if err != nil {
					errc <- err
					return
				}
			}
		}()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		reads := 0
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true
			default:
			}
			e, rev, err := s.ReadAll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			reads++
			if len(e.Services) != len(e.Routes) || int64(len(e.Services)) != rev {
				t.Fatalf("ReadAll: %d services, %d routes at revision %d", len(e.Services), len(e.Routes), rev)
			}
			if !slices.IsSortedFunc(e.Services, func(a, b config.Service) int { return cmpStr(a.ID, b.ID) }) {
				t.Fatalf("ReadAll services not sorted by id")
			}
		}
		select {
		case err := <-errc:
			t.Fatal(err)
		default:
		}
		e, rev, _ := s.ReadAll(ctx)
		if rev != writes || len(e.Routes) != writes {
			t.Errorf("final ReadAll: %d routes at %d, want %d", len(e.Routes), rev, writes)
		}
		t.Logf("%d consistent reads during %d writes", reads, writes)
	})
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

const importDoc = `
_format_version: "3.0"
services:
- name: billing
  url: http://billing.internal:8080/v1
  tags: [team-a]
  routes:
  - name: billing-api
    paths: [/billing]
    plugins:
    - name: prometheus
  plugins:
  - name: key-auth
    config: {key_names: [apikey]}
consumers:
- username: alice
  custom_id: a-1
  keyauth_credentials:
  - key: alice-secret
plugins:
- name: prometheus
  instance_name: global-metrics
upstreams:
- name: billing.upstream
  targets:
  - target: 10.0.0.1:8080
    weight: 50
  - target: 10.0.0.2
`

func TestImport(t *testing.T) {
	load := func(t *testing.T) *config.Entities {
		e, err := config.LoadDeclarative([]byte(importDoc), config.LoadOptions{Plugins: testSchemas{}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	forEachEngine(t, func(t *testing.T, h *harness) {
		s := h.mustOpen(t)
		ctx := context.Background()
		// Something already stored stays: import deletes nothing.
		other := newConsumer(t, "bob")
		insert(t, s, other)
		ents := load(t)
		rev, err := s.Import(ctx, ents)
		if err != nil {
			t.Fatalf("Import: %v", err)
		}
		if rev != 2 {
			t.Errorf("Import revision = %d, want 2", rev)
		}
		got, grev, err := s.ReadAll(ctx)
		if err != nil || grev != rev {
			t.Fatalf("ReadAll = rev %d, %v", grev, err)
		}
		if len(got.Consumers) != 2 {
			t.Errorf("consumers = %d, want 2 (bob kept)", len(got.Consumers))
		}
		got.Consumers = slices.DeleteFunc(got.Consumers, func(c config.Consumer) bool { return c.ID == other.ID })
		if want := withoutUpdatedAt(ents); !reflect.DeepEqual(withoutUpdatedAt(got), want) {
			gj, _ := jsonOf(got)
			wj, _ := jsonOf(ents)
			t.Errorf("ReadAll after Import:\n%s\nwant\n%s", gj, wj)
		}

		// Again, from a fresh load (new timestamps, a new random credential
		// id): same entities, created_at kept, the credential matched by key.
		again := load(t)
		rev2, err := s.Import(ctx, again)
		if err != nil {
			t.Fatalf("second Import: %v", err)
		}
		if rev2 != rev+1 {
			t.Errorf("second Import revision = %d, want %d", rev2, rev+1)
		}
		got2, _, _ := s.ReadAll(ctx)
		got2.Consumers = slices.DeleteFunc(got2.Consumers, func(c config.Consumer) bool { return c.ID == other.ID })
		if !reflect.DeepEqual(withoutUpdatedAt(got2), withoutUpdatedAt(got)) {
			gj, _ := jsonOf(got2)
			wj, _ := jsonOf(got)
			t.Errorf("ReadAll after second Import:\n%s\nwant\n%s", gj, wj)
		}
		if len(got2.KeyauthCredentials) != 1 {
			t.Errorf("credentials = %d, want 1", len(got2.KeyauthCredentials))
		}
		if again.KeyauthCredentials[0].ID == got2.KeyauthCredentials[0].ID {
			t.Errorf("import rewrote the caller's entities")
		}
	})
}

// withoutUpdatedAt zeroes the timestamps a write sets.
func withoutUpdatedAt(e *config.Entities) *config.Entities {
	c := *e
	c.Services = slices.Clone(e.Services)
	for i := range c.Services {
		c.Services[i].UpdatedAt = 0
	}
	c.Routes = slices.Clone(e.Routes)
	for i := range c.Routes {
		c.Routes[i].UpdatedAt = 0
	}
	c.Consumers = slices.Clone(e.Consumers)
	for i := range c.Consumers {
		c.Consumers[i].UpdatedAt = 0
	}
	c.Plugins = slices.Clone(e.Plugins)
	for i := range c.Plugins {
		c.Plugins[i].UpdatedAt = 0
	}
	c.Upstreams = slices.Clone(e.Upstreams)
	for i := range c.Upstreams {
		c.Upstreams[i].UpdatedAt = 0
	}
	c.Targets = slices.Clone(e.Targets)
	for i := range c.Targets {
		c.Targets[i].UpdatedAt = 0
	}
	// JSON round trip: what the store hands back decodes nil and empty
	// collections alike.
	b, _ := jsonOf(&c)
	var out config.Entities
	_ = jsonUnmarshal(b, &out)
	return &out
}

func TestMigrations(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		s, err := h.open(t, 0)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, err = h.open(t, 0) // nothing left to apply
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		raw := h.raw(t)
		var n, max int
		if err := raw.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &max); err != nil {
			t.Fatal(err)
		}
		if n != SchemaVersion() || max != SchemaVersion() {
			t.Errorf("schema_migrations: %d rows up to %d, want %d", n, max, SchemaVersion())
		}
		if _, err := raw.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
			t.Fatal(err)
		}
		_, err = h.open(t, 0)
		var sv *SchemaVersionError
		if !errors.As(err, &sv) || sv.Database != 999 || sv.Supported != SchemaVersion() {
			t.Fatalf("Open(newer database) = %v, want *SchemaVersionError", err)
		}
		want := fmt.Sprintf("database schema version 999 is newer than this datakit supports (%d)", SchemaVersion())
		if sv.Error() != want {
			t.Errorf("message = %q, want %q", sv.Error(), want)
		}
	})
}

func TestDurability(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		s, err := h.open(t, 0)
		if err != nil {
			t.Fatal(err)
		}
		svc := newService(t, "billing")
		rev := insert(t, s, svc)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, Services, svc.ID); !errors.Is(err, ErrClosed) {
			t.Errorf("Get after Close = %v, want ErrClosed", err)
		}
		s = h.mustOpen(t)
		raw, err := s.Get(ctx, Services, "billing")
		if err != nil || field(t, raw, "id") != svc.ID {
			t.Fatalf("Get after reopen = %s, %v", raw, err)
		}
		if r, _ := s.Revision(ctx); r != rev {
			t.Errorf("revision after reopen = %d, want %d", r, rev)
		}
	})
}

func TestSQLiteLock(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/datakit.db"
	s, err := OpenSQLite(ctx, SQLiteOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenSQLite(ctx, SQLiteOptions{Path: path})
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second OpenSQLite = %v, want *LockedError", err)
	}
	if want := "database file " + path + " is in use by another datakit process"; err.Error() != want {
		t.Errorf("message = %q, want %q", err.Error(), want)
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Errorf("lock file: %v", err)
	}
	s.Close()
	s, err = OpenSQLite(ctx, SQLiteOptions{Path: path})
	if err != nil {
		t.Fatalf("OpenSQLite after Close = %v", err)
	}
	s.Close()
}

func TestSQLitePragmas(t *testing.T) {
	h := newHarness(t, "sqlite")
	s := h.mustOpen(t)
	ctx := context.Background()
	err := s.(*sqlStore).read(ctx, nil, func(r *reader) error {
		for pragma, want := range map[string]string{
			"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "5000",
		} {
			var got string
			if err := r.q.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				return err
			}
			if got != want {
				t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPostgresUnreachable(t *testing.T) {
	testDatabase(t) // skips like the rest when PostgreSQL is missing
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := OpenPostgres(ctx, PostgresOptions{Port: 1, User: "postgres", Timeout: time.Second})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("OpenPostgres(port 1) = %v, want ErrUnavailable", err)
	}
}

// TestConcurrentMigrations opens several stores on one fresh PostgreSQL
// schema at once: the advisory lock applies each migration once.
func TestConcurrentMigrations(t *testing.T) {
	h := newHarness(t, "postgres")
	const n = 4
	errs := make(chan error, n)
	stores := make(chan Store, n)
	for range n {
		go func() {
			s, err := h.open(t, 0)
			if err == nil {
				stores <- s
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent open: %v", err)
		}
	}
	close(stores)
	for s := range stores {
		s.Close()
	}
	var rows int
	if err := h.raw(t).QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != SchemaVersion() {
		t.Errorf("schema_migrations rows = %d, want %d", rows, SchemaVersion())
	}
}
