package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/store"
)

// TestT41DatastoreUnavailable: the node's database goes away while it serves
// (gateway.md §6.8). The shared server cannot be stopped, so the outage is
// cut for this node only: it connects as a role of its own that owns a
// database of its own, and the test makes that role NOLOGIN and terminates
// that role's sessions. No other role or database is touched; a cleanup
// restores LOGIN before dropping both. Meanwhile the proxy keeps serving
// from the snapshot, /status reports database.reachable false, readiness
// stays 200, writes needing the database answer 503. Another store client
// (a superuser, unaffected) writes during the outage and after it; the node
// catches up on both once the role may log in again.
func TestT41DatastoreUnavailable(t *testing.T) {
	pg := newPGDatabaseWithRole(t)
	n := startTestNode(t, append(pg.settings(), "db_update_frequency=100ms", "db_update_debounce=10ms", "pg_timeout=1s")...)
	up := upstreamSaying(t, "before", 0)
	mustCall(t, 201, "POST", n.admin+"/services", map[string]any{"name": "svc", "url": up})
	mustCall(t, 201, "POST", n.admin+"/services/svc/routes", map[string]any{"name": "r", "paths": []string{"/before"}})
	waitFor(t, func() bool { code, _, _ := fetch(n.proxy + "/before"); return code == 200 })

	// Another writer: a superuser store client on the same database.
	ctx := context.Background()
	other, err := store.OpenPostgres(ctx, store.PostgresOptions{Host: "127.0.0.1", User: pg.Super, Database: pg.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close() //nolint:errcheck // test cleanup
	importRoute := func(name, upstream string) int64 {
		t.Helper()
		ents, err := config.LoadDeclarative([]byte(`_format_version: "3.0"
services:
  - name: `+name+`
    url: `+upstream+`
    routes: [{name: `+name+`, paths: ["/`+name+`"]}]
`), config.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rev, err := other.Import(ctx, ents)
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}

	// The outage: the node's role may no longer log in, and its sessions end.
	restored := false
	restore := func() {
		if !restored {
			restored = true
			pg.exec(t, "ALTER ROLE "+pg.Owner+" LOGIN")
		}
	}
	t.Cleanup(restore)
	pg.exec(t, "ALTER ROLE "+pg.Owner+" NOLOGIN")
	pg.exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '"+pg.Owner+"' AND datname = '"+pg.Name+"'")

	waitFor(t, func() bool {
		st, err := getAdminStatus(n.admin)
		return err == nil && st.Database != nil && !st.Database.Reachable
	})
	during := importRoute("during", upstreamSaying(t, "during", 0))
	for i := range 50 {
		if code, body, err := fetch(n.proxy + "/before"); code != 200 || body != "before" {
			t.Fatalf("proxy request %d during the outage = %d %q (%v), want the snapshot serving", i, code, body, err)
		}
	}
	for _, url := range []string{n.status + "/status/ready", n.admin + "/status/ready"} {
		if code, body, _ := fetch(url); code != 200 {
			t.Errorf("%s during the outage = %d %s, want 200", url, code, body)
		}
	}
	start := time.Now()
	code, _, body, err := call("POST", n.admin+"/services", map[string]any{"name": "refused", "url": up})
	var msg struct{ Message string }
	_ = json.Unmarshal(body, &msg)
	if err != nil || code != 503 || msg.Message != "database unreachable" || time.Since(start) > 5*time.Second {
		t.Errorf("Admin write during the outage = %d %s (%v) after %v, want 503 database unreachable within pg_timeout",
			code, body, err, time.Since(start))
	}
	if code, _, _ := fetch(n.proxy + "/during"); code != 404 {
		t.Errorf("/during before recovery = %d, want 404: the node cannot have read it", code)
	}

	// Recovery: the next poll sees the revision written meanwhile.
	restore()
	waitFor(t, func() bool { code, body, _ := fetch(n.proxy + "/during"); return code == 200 && body == "during" })
	waitFor(t, func() bool {
		st, err := getAdminStatus(n.admin)
		return err == nil && st.Database != nil && st.Database.Reachable && st.Datakit.Revision != nil && *st.Datakit.Revision >= during
	})
	after := importRoute("after", upstreamSaying(t, "after", 0))
	waitFor(t, func() bool { code, body, _ := fetch(n.proxy + "/after"); return code == 200 && body == "after" })
	if rev := revisionOf(n.admin); rev < after {
		t.Errorf("revision after recovery = %d, want ≥ %d", rev, after)
	}
	// The node's own Admin API writes again.
	_, b := mustCall(t, 201, "POST", n.admin+"/services", map[string]any{"name": "accepted", "url": up})
	if !strings.Contains(string(b), `"accepted"`) {
		t.Errorf("POST /services after recovery = %s", b)
	}
}
