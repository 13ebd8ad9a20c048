package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// crudCase builds an entity of one collection (inserting its parents),
// names its endpoint key and changes it for the update step.
type crudCase struct {
	kind   Kind
	build  func(t *testing.T, s Store) any
	key    func(e any) string
	change func(e any)
	// check reads a changed field back.
	check func(t *testing.T, raw json.RawMessage)
}

func crudCases() []crudCase {
	return []crudCase{
		{
			kind:   Services,
			build:  func(t *testing.T, s Store) any { return newService(t, "billing") },
			key:    func(e any) string { return *e.(*config.Service).Name },
			change: func(e any) { e.(*config.Service).Port = 8080 },
			check: func(t *testing.T, raw json.RawMessage) {
				if got := field(t, raw, "port"); got != 8080.0 {
					t.Errorf("port = %v, want 8080", got)
				}
			},
		},
		{
			kind: Routes,
			build: func(t *testing.T, s Store) any {
				svc := newService(t, "billing")
				insert(t, s, svc)
				return newRoute(t, "billing-api", svc.ID)
			},
			key:    func(e any) string { return *e.(*config.Route).Name },
			change: func(e any) { e.(*config.Route).StripPath = false },
			check: func(t *testing.T, raw json.RawMessage) {
				if got := field(t, raw, "strip_path"); got != false {
					t.Errorf("strip_path = %v, want false", got)
				}
			},
		},
		{
			kind:   Consumers,
			build:  func(t *testing.T, s Store) any { return newConsumer(t, "alice", "custom_id", "a-1") },
			key:    func(e any) string { return *e.(*config.Consumer).Username },
			change: func(e any) { id := "a-2"; e.(*config.Consumer).CustomID = &id },
			check: func(t *testing.T, raw json.RawMessage) {
				if got := field(t, raw, "custom_id"); got != "a-2" {
					t.Errorf("custom_id = %v, want a-2", got)
				}
			},
		},
		{
			kind: Plugins,
			build: func(t *testing.T, s Store) any {
				svc := newService(t, "billing")
				insert(t, s, svc)
				return newPlugin(t, "key-auth", "instance_name", "billing-auth", "service", map[string]any{"id": svc.ID})
			},
			key:    func(e any) string { return *e.(*config.Plugin).InstanceName },
			change: func(e any) { e.(*config.Plugin).Enabled = false },
			check: func(t *testing.T, raw json.RawMessage) {
				if got := field(t, raw, "enabled"); got != false {
					t.Errorf("enabled = %v, want false", got)
				}
			},
		},
		{
			kind:   Upstreams,
			build:  func(t *testing.T, s Store) any { return newUpstream(t, "backend.internal") },
			key:    func(e any) string { return e.(*config.Upstream).Name },
			change: func(e any) { e.(*config.Upstream).Slots = 100 },
			check: func(t *testing.T, raw json.RawMessage) {
				if got := field(t, raw, "slots"); got != 100.0 {
					t.Errorf("slots = %v, want 100", got)
				}
			},
		},
		{
			kind: Targets,
			build: func(t *testing.T, s Store) any {
				up := newUpstream(t, "backend.internal")
				insert(t, s, up)
				return newTarget(t, up.ID, "10.0.0.1")
			},
			change: func(e any) { e.(*config.Target).Weight = 5 },
			check: func(t *testing.T, raw json.RawMessage) {
				if got := field(t, raw, "weight"); got != 5.0 {
					t.Errorf("weight = %v, want 5", got)
				}
			},
		},
		{
			kind:   Certificates,
			build:  func(t *testing.T, s Store) any { return newCertificate() },
			change: func(e any) { e.(*config.Certificate).Tags = []string{"rotated"} },
			check: func(t *testing.T, raw json.RawMessage) {
				if got := field(t, raw, "tags"); !reflect.DeepEqual(got, []any{"rotated"}) {
					t.Errorf("tags = %v, want [rotated]", got)
				}
				if got := field(t, raw, "snis"); !reflect.DeepEqual(got, []any{}) {
					t.Errorf("snis = %#v, want []", got)
				}
			},
		},
		{
			kind: SNIs,
			build: func(t *testing.T, s Store) any {
				c := newCertificate()
				insert(t, s, c)
				return newSNI(t, "api.example.test", c.ID)
			},
			key:    func(e any) string { return e.(*config.SNI).Name },
			change: func(e any) { e.(*config.SNI).Tags = []string{"x"} },
			check: func(t *testing.T, raw json.RawMessage) {
				if got := field(t, raw, "tags"); !reflect.DeepEqual(got, []any{"x"}) {
					t.Errorf("tags = %v, want [x]", got)
				}
			},
		},
		{
			kind: KeyauthCredentials,
			build: func(t *testing.T, s Store) any {
				c := newConsumer(t, "alice")
				insert(t, s, c)
				return newKeyauth(t, c.ID, "")
			},
			key:    func(e any) string { return e.(*config.KeyauthCredential).Key },
			change: func(e any) { e.(*config.KeyauthCredential).Key = "rotated-key" },
			check: func(t *testing.T, raw json.RawMessage) {
				if got := field(t, raw, "key"); got != "rotated-key" {
					t.Errorf("key = %v, want rotated-key", got)
				}
			},
		},
	}
}

// entityID reads the id an entity pointer carries.
func entityID(t *testing.T, e any) string {
	t.Helper()
	a, err := adapt(e)
	if err != nil {
		t.Fatal(err)
	}
	return *a.id
}

func TestCRUD(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		for _, tc := range crudCases() {
			t.Run(string(tc.kind), func(t *testing.T) {
				s := newHarness(t, h.engine).mustOpen(t)
				ctx := context.Background()
				e := tc.build(t, s)
				insert(t, s, e)
				id := entityID(t, e)
				if !config.IsUUID(id) {
					t.Fatalf("Insert gave id %q, want a UUID", id)
				}
				raw, err := s.Get(ctx, tc.kind, id)
				if err != nil {
					t.Fatalf("Get(%s, %s) = %v", tc.kind, id, err)
				}
				want, _ := json.Marshal(e)
				if tc.kind != Certificates && string(raw) != string(want) {
					t.Errorf("Get(%s) = %s, want %s", tc.kind, raw, want)
				}
				created := field(t, raw, "created_at")
				if created == nil || created == 0.0 {
					t.Errorf("created_at = %v, want now", created)
				}
				if tc.key != nil {
					byKey, err := s.Get(ctx, tc.kind, tc.key(e))
					if err != nil || string(byKey) != string(raw) {
						t.Errorf("Get(%s, %q) = %s, %v, want %s", tc.kind, tc.key(e), byKey, err, raw)
					}
				}

				// Update (PATCH): changed field, created_at kept.
				tc.change(e)
				write(t, s, func(ctx context.Context, tx Tx) error { return tx.Update(ctx, e) })
				raw, err = s.Get(ctx, tc.kind, id)
				if err != nil {
					t.Fatalf("Get after Update: %v", err)
				}
				tc.check(t, raw)
				if got := field(t, raw, "created_at"); got != created {
					t.Errorf("created_at after Update = %v, want %v", got, created)
				}

				// Upsert (PUT) of the stored id without created_at keeps it.
				a, _ := adapt(e)
				if a.createdInt != nil {
					*a.createdInt = 0
				} else {
					*a.createdFloat = 0
				}
				var createdNew bool
				write(t, s, func(ctx context.Context, tx Tx) (err error) {
					createdNew, err = tx.Upsert(ctx, e)
					return err
				})
				if createdNew {
					t.Errorf("Upsert of a stored id reported created")
				}
				raw, _ = s.Get(ctx, tc.kind, id)
				if got := field(t, raw, "created_at"); got != created {
					t.Errorf("created_at after Upsert = %v, want %v", got, created)
				}

				// Delete, then it is gone; deleting again is ErrNotFound.
				write(t, s, func(ctx context.Context, tx Tx) error { return tx.Delete(ctx, tc.kind, id) })
				if _, err := s.Get(ctx, tc.kind, id); !errors.Is(err, ErrNotFound) {
					t.Errorf("Get after Delete = %v, want ErrNotFound", err)
				}
				_, err = s.Tx(ctx, func(tx Tx) error { return tx.Delete(ctx, tc.kind, id) })
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("second Delete = %v, want ErrNotFound", err)
				}
				// Update of a missing entity is ErrNotFound; Upsert creates.
				_, err = s.Tx(ctx, func(tx Tx) error { return tx.Update(ctx, e) })
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("Update of deleted = %v, want ErrNotFound", err)
				}
				write(t, s, func(ctx context.Context, tx Tx) (err error) {
					createdNew, err = tx.Upsert(ctx, e)
					return err
				})
				if !createdNew {
					t.Errorf("Upsert of a missing id did not report created")
				}
			})
		}
	})
}

func TestLookups(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		s := h.mustOpen(t)
		ctx := context.Background()
		c := newConsumer(t, "alice", "custom_id", "c-7")
		up := newUpstream(t, "backend.internal")
		up2 := newUpstream(t, "other.internal")
		insert(t, s, c, up, up2)
		tg := newTarget(t, up.ID, "10.0.0.1:80")
		insert(t, s, tg)

		if raw, err := s.GetBy(ctx, Consumers, "custom_id", "c-7"); err != nil || field(t, raw, "id") != c.ID {
			t.Errorf("GetBy(custom_id) = %s, %v", raw, err)
		}
		if _, err := s.GetBy(ctx, Consumers, "custom_id", "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetBy(missing) = %v, want ErrNotFound", err)
		}
		if _, err := s.GetBy(ctx, Consumers, "entity", "x"); err == nil {
			t.Errorf("GetBy(non-unique field) succeeded")
		}
		if raw, err := s.GetTarget(ctx, up.ID, "10.0.0.1:80"); err != nil || field(t, raw, "id") != tg.ID {
			t.Errorf("GetTarget(by target) = %s, %v", raw, err)
		}
		if _, err := s.GetTarget(ctx, up.ID, tg.ID); err != nil {
			t.Errorf("GetTarget(by id) = %v", err)
		}
		if _, err := s.GetTarget(ctx, up2.ID, tg.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetTarget(other upstream) = %v, want ErrNotFound", err)
		}
		// An upper-case id finds the entity (ids are stored lower-case).
		if _, err := s.Get(ctx, Consumers, toUpper(c.ID)); err != nil {
			t.Errorf("Get(upper-case id) = %v", err)
		}
		page, err := s.List(ctx, Consumers, ListOptions{CustomID: ptr("c-7")})
		if err != nil || len(page.Data) != 1 || page.Next != "" {
			t.Errorf("List(custom_id) = %d entities, next %q, %v; want 1", len(page.Data), page.Next, err)
		}
	})
}

func toUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }

func TestUniqueViolations(t *testing.T) {
	type tc struct {
		name string
		// setup stores the first entity and returns the conflicting one.
		setup   func(t *testing.T, s Store) any
		kind    Kind
		key     string // "" = compute with wantKey
		wantKey func(e any) string
		fields  []string
	}
	cases := []tc{
		{name: "service name", kind: Services, key: `{name="billing"}`, fields: []string{"name"},
			setup: func(t *testing.T, s Store) any {
				insert(t, s, newService(t, "billing"))
				return newService(t, "billing")
			}},
		{name: "route name", kind: Routes, key: `{name="r"}`, fields: []string{"name"},
			setup: func(t *testing.T, s Store) any {
				insert(t, s, newRoute(t, "r", ""))
				return newRoute(t, "r", "")
			}},
		{name: "consumer username", kind: Consumers, key: `{username="alice"}`, fields: []string{"username"},
			setup: func(t *testing.T, s Store) any {
				insert(t, s, newConsumer(t, "alice"))
				return newConsumer(t, "alice")
			}},
		{name: "consumer custom_id", kind: Consumers, key: `{custom_id="c1"}`, fields: []string{"custom_id"},
			setup: func(t *testing.T, s Store) any {
				insert(t, s, newConsumer(t, "alice", "custom_id", "c1"))
				return newConsumer(t, "bob", "custom_id", "c1")
			}},
		{name: "plugin scope", kind: Plugins, fields: []string{"consumer", "name", "route", "service"},
			wantKey: func(e any) string { return config.PluginUniqueKey(e.(*config.Plugin)) },
			setup: func(t *testing.T, s Store) any {
				svc := newService(t, "billing")
				insert(t, s, svc)
				insert(t, s, newPlugin(t, "key-auth", "service", map[string]any{"id": svc.ID}))
				// By name: resolved to the id before the check.
				return newPlugin(t, "key-auth", "service", map[string]any{"name": "billing"})
			}},
		{name: "global plugin", kind: Plugins, key: `{consumer=null,name="prometheus",route=null,service=null}`,
			fields: []string{"consumer", "name", "route", "service"},
			setup: func(t *testing.T, s Store) any {
				insert(t, s, newPlugin(t, "prometheus"))
				return newPlugin(t, "prometheus")
			}},
		{name: "plugin instance_name", kind: Plugins, key: `{instance_name="p"}`, fields: []string{"instance_name"},
			setup: func(t *testing.T, s Store) any {
				insert(t, s, newPlugin(t, "prometheus", "instance_name", "p"))
				return newPlugin(t, "key-auth", "instance_name", "p")
			}},
		{name: "upstream name", kind: Upstreams, key: `{name="u.internal"}`, fields: []string{"name"},
			setup: func(t *testing.T, s Store) any {
				insert(t, s, newUpstream(t, "u.internal"))
				return newUpstream(t, "u.internal")
			}},
		{name: "target per upstream", kind: Targets, fields: []string{"target", "upstream"},
			wantKey: func(e any) string {
				return fmt.Sprintf(`{target="10.0.0.1:8000",upstream={id=%q}}`, e.(*config.Target).Upstream.ID)
			},
			setup: func(t *testing.T, s Store) any {
				up, other := newUpstream(t, "u.internal"), newUpstream(t, "v.internal")
				insert(t, s, up, other)
				// The same target under another upstream is fine.
				insert(t, s, newTarget(t, up.ID, "10.0.0.1"), newTarget(t, other.ID, "10.0.0.1"))
				return newTarget(t, up.ID, "10.0.0.1:8000")
			}},
		{name: "sni name", kind: SNIs, key: `{name="a.test"}`, fields: []string{"name"},
			setup: func(t *testing.T, s Store) any {
				c := newCertificate("a.test")
				insert(t, s, c)
				return newSNI(t, "a.test", c.ID)
			}},
		{name: "keyauth key", kind: KeyauthCredentials, key: `{key="k1"}`, fields: []string{"key"},
			setup: func(t *testing.T, s Store) any {
				c, d := newConsumer(t, "alice"), newConsumer(t, "bob")
				insert(t, s, c, d)
				insert(t, s, newKeyauth(t, c.ID, "k1"))
				return newKeyauth(t, d.ID, "k1")
			}},
	}
	forEachEngine(t, func(t *testing.T, h *harness) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s := newHarness(t, h.engine).mustOpen(t)
				ctx := context.Background()
				e := c.setup(t, s)
				before, _ := s.Revision(ctx)
				_, err := s.Tx(ctx, func(tx Tx) error { return tx.Insert(ctx, e) })
				var ue *UniqueError
				if !errors.As(err, &ue) {
					t.Fatalf("Insert = %v, want *UniqueError", err)
				}
				want := c.key
				if c.wantKey != nil {
					want = c.wantKey(e)
				}
				if ue.Kind != c.kind || ue.Key != want {
					t.Errorf("UniqueError = %s %s, want %s %s", ue.Kind, ue.Key, c.kind, want)
				}
				if got := "UNIQUE violation detected on '" + want + "'"; ue.Error() != got {
					t.Errorf("message = %q, want %q", ue.Error(), got)
				}
				keys := make([]string, 0, len(ue.Fields))
				for k := range ue.Fields {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if !slices.Equal(keys, c.fields) {
					t.Errorf("fields = %v, want %v", keys, c.fields)
				}
				if after, _ := s.Revision(ctx); after != before {
					t.Errorf("revision %d → %d after a failed write", before, after)
				}
			})
		}
	})
}

func TestPrimaryKeyViolation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		s := h.mustOpen(t)
		ctx := context.Background()
		a := newService(t, "a")
		insert(t, s, a)
		b := newService(t, "b")
		b.ID = a.ID
		_, err := s.Tx(ctx, func(tx Tx) error { return tx.Insert(ctx, b) })
		var pk *PrimaryKeyError
		if !errors.As(err, &pk) || pk.ID != a.ID {
			t.Fatalf("Insert(same id) = %v, want *PrimaryKeyError", err)
		}
		if want := fmt.Sprintf("primary key violation on key '{id=%q}'", a.ID); pk.Error() != want {
			t.Errorf("message = %q, want %q", pk.Error(), want)
		}
	})
}

func TestForeignKeys(t *testing.T) {
	const missing = "6b0e4a52-7a0e-4a3c-9f55-0d3c1e2f8a11"
	type tc struct {
		name   string
		entity func(t *testing.T) any
		want   error
	}
	cases := []tc{
		{"route service id", func(t *testing.T) any { return newRoute(t, "r", missing) },
			&ForeignKeyError{Field: "service", Parent: Services, ID: missing}},
		{"route service name", func(t *testing.T) any {
			return newRoute(t, "r", "", "service", map[string]any{"name": "nope"})
		}, &UnresolvedError{Field: "service", KeyField: "name", Value: "nope", Parent: Services}},
		{"plugin consumer", func(t *testing.T) any {
			return newPlugin(t, "prometheus", "consumer", map[string]any{"id": missing})
		}, &ForeignKeyError{Field: "consumer", Parent: Consumers, ID: missing}},
		{"target upstream", func(t *testing.T) any { return newTarget(t, missing, "10.0.0.1") },
			&ForeignKeyError{Field: "upstream", Parent: Upstreams, ID: missing}},
		{"service client_certificate", func(t *testing.T) any {
			return newService(t, "s", "protocol", "https", "client_certificate", map[string]any{"id": missing})
		}, &ForeignKeyError{Field: "client_certificate", Parent: Certificates, ID: missing}},
		{"keyauth consumer", func(t *testing.T) any { return newKeyauth(t, missing, "k") },
			&ForeignKeyError{Field: "consumer", Parent: Consumers, ID: missing}},
		{"sni certificate", func(t *testing.T) any { return newSNI(t, "a.test", missing) },
			&ForeignKeyError{Field: "certificate", Parent: Certificates, ID: missing}},
	}
	forEachEngine(t, func(t *testing.T, h *harness) {
		s := h.mustOpen(t)
		ctx := context.Background()
		for _, c := range cases {
			_, err := s.Tx(ctx, func(tx Tx) error { return tx.Insert(ctx, c.entity(t)) })
			if err == nil || reflect.TypeOf(err) != reflect.TypeOf(c.want) || err.Error() != c.want.Error() {
				t.Errorf("%s: Insert = %v, want %v", c.name, err, c.want)
			}
		}
		want := fmt.Sprintf("the foreign key '{id=%q}' does not reference an existing 'services' entity.", missing)
		if got := cases[0].want.Error(); got != want {
			t.Errorf("message = %q, want %q", got, want)
		}
		// A reference by endpoint key is resolved and written back as an id.
		svc := newService(t, "billing")
		insert(t, s, svc)
		r := newRoute(t, "r", "", "service", map[string]any{"name": "billing"})
		insert(t, s, r)
		if r.Service == nil || r.Service.ID != svc.ID || r.Service.Key != "" {
			t.Errorf("route.service = %+v, want {ID: %s}", r.Service, svc.ID)
		}
		raw, _ := s.Get(ctx, Routes, r.ID)
		if got := field(t, raw, "service"); !reflect.DeepEqual(got, map[string]any{"id": svc.ID}) {
			t.Errorf("stored service = %v", got)
		}
	})
}

func TestDeleteRules(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		s := h.mustOpen(t)
		ctx := context.Background()
		svc := newService(t, "billing")
		c := newConsumer(t, "alice")
		up := newUpstream(t, "u.internal")
		cert := newCertificate("a.test", "b.test")
		insert(t, s, svc, c, up, cert)
		r := newRoute(t, "r", svc.ID)
		insert(t, s, r)
		routePlugin := newPlugin(t, "prometheus", "route", map[string]any{"id": r.ID})
		svcPlugin := newPlugin(t, "key-auth", "service", map[string]any{"id": svc.ID})
		consumerPlugin := newPlugin(t, "prometheus", "consumer", map[string]any{"id": c.ID})
		cred := newKeyauth(t, c.ID, "k1")
		tg := newTarget(t, up.ID, "10.0.0.1")
		user := newUpstream(t, "tls.internal", "client_certificate", map[string]any{"id": cert.ID})
		insert(t, s, routePlugin, svcPlugin, consumerPlugin, cred, tg, user)

		del := func(kind Kind, ref string) error {
			_, err := s.Tx(ctx, func(tx Tx) error { return tx.Delete(ctx, kind, ref) })
			return err
		}
		gone := func(kind Kind, id string) {
			t.Helper()
			if _, err := s.Get(ctx, kind, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s %s still there (%v)", kind, id, err)
			}
		}
		there := func(kind Kind, id string) {
			t.Helper()
			if _, err := s.Get(ctx, kind, id); err != nil {
				t.Errorf("%s %s: %v", kind, id, err)
			}
		}

		// A service with routes cannot be deleted.
		err := del(Services, "billing")
		var re *ReferencedError
		if !errors.As(err, &re) || re.By != Routes || re.Kind != Services {
			t.Fatalf("Delete(service with routes) = %v, want *ReferencedError by routes", err)
		}
		if want := "an existing 'routes' entity references this 'services' entity"; re.Error() != want {
			t.Errorf("message = %q, want %q", re.Error(), want)
		}
		there(Services, svc.ID)
		// Deleting the route deletes its plugins.
		if err := del(Routes, "r"); err != nil {
			t.Fatal(err)
		}
		gone(Plugins, routePlugin.ID)
		there(Plugins, svcPlugin.ID)
		// Now the service goes, with its plugins.
		if err := del(Services, svc.ID); err != nil {
			t.Fatal(err)
		}
		gone(Plugins, svcPlugin.ID)
		// A consumer takes its plugins and credentials.
		if err := del(Consumers, "alice"); err != nil {
			t.Fatal(err)
		}
		gone(Plugins, consumerPlugin.ID)
		gone(KeyauthCredentials, cred.ID)
		// An upstream takes its targets.
		if err := del(Upstreams, up.ID); err != nil {
			t.Fatal(err)
		}
		gone(Targets, tg.ID)
		// A certificate used as client_certificate is kept.
		if err := del(Certificates, cert.ID); !errors.As(err, &re) || re.By != Upstreams {
			t.Fatalf("Delete(certificate in use) = %v, want *ReferencedError by upstreams", err)
		}
		if err := del(Upstreams, user.ID); err != nil {
			t.Fatal(err)
		}
		// Then it goes with its SNIs.
		if err := del(Certificates, cert.ID); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"a.test", "b.test"} {
			if _, err := s.Get(ctx, SNIs, n); !errors.Is(err, ErrNotFound) {
				t.Errorf("SNI %s after certificate delete: %v", n, err)
			}
		}
	})
}

func TestCertificateSNIs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		s := h.mustOpen(t)
		ctx := context.Background()
		c := newCertificate("b.test", "a.test")
		insert(t, s, c)
		if !slices.Equal(c.SNIs, []string{"a.test", "b.test"}) {
			t.Errorf("SNIs after insert = %v", c.SNIs)
		}
		raw, _ := s.Get(ctx, Certificates, c.ID)
		if got := field(t, raw, "snis"); !reflect.DeepEqual(got, []any{"a.test", "b.test"}) {
			t.Errorf("Get snis = %v", got)
		}
		c.SNIs = []string{"b.test", "c.test"}
		write(t, s, func(ctx context.Context, tx Tx) error { return tx.Update(ctx, c) })
		if _, err := s.Get(ctx, SNIs, "a.test"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a.test after replace: %v", err)
		}
		raw, _ = s.Get(ctx, Certificates, c.ID)
		if got := field(t, raw, "snis"); !reflect.DeepEqual(got, []any{"b.test", "c.test"}) {
			t.Errorf("snis after replace = %v", got)
		}
		// Nil SNIs leave them alone.
		c.SNIs = nil
		write(t, s, func(ctx context.Context, tx Tx) error { return tx.Update(ctx, c) })
		if !slices.Equal(c.SNIs, []string{"b.test", "c.test"}) {
			t.Errorf("SNIs after update without snis = %v", c.SNIs)
		}
		// A name owned by another certificate conflicts.
		other := newCertificate("c.test")
		_, err := s.Tx(ctx, func(tx Tx) error { return tx.Insert(ctx, other) })
		var ue *UniqueError
		if !errors.As(err, &ue) || ue.Kind != SNIs {
			t.Errorf("Insert(other cert with c.test) = %v, want *UniqueError on snis", err)
		}
		page, err := s.List(ctx, SNIs, ListOptions{Parent: &Ref{Certificates, c.ID}})
		if err != nil || len(page.Data) != 2 {
			t.Errorf("List(snis of certificate) = %d, %v; want 2", len(page.Data), err)
		}
	})
}
