package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/store"
)

// TestT41DatastoreUnavailable: the node's database becomes unreachable
// while it serves (gateway.md §6.8): its login is refused, or a fault proxy
// between node and server adds latency, black-holes, resets or refuses the
// connections. Throughout, the proxy serves the last configuration,
// readiness stays 200, Admin API calls needing the database answer 503
// `database unreachable` within pg_timeout, /status reports
// database.reachable false, and the node catches up after recovery without
// a restart.
func TestT41DatastoreUnavailable(t *testing.T) {
	t.Run("login refused", testOutageLoginRefused)
	t.Run("faultproxy", testOutageFaultProxy)
}

// testOutageLoginRefused: the shared server cannot be stopped, so the
// outage is cut for this node only: it connects as a role of its own that owns a
// database of its own, and the test makes that role NOLOGIN and terminates
// that role's sessions. No other role or database is touched; a cleanup
// restores LOGIN before dropping both. Meanwhile the proxy keeps serving
// from the snapshot, /status reports database.reachable false, readiness
// stays 200, writes needing the database answer 503. Another store client
// (a superuser, unaffected) writes during the outage and after it; the node
// catches up on both once the role may log in again.
func testOutageLoginRefused(t *testing.T) {
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
	importRoute := func(name, upstream string) int64 { return importRoute(t, other, name, upstream) }

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

// importRoute writes a service and a route at /name to upstream through
// another store client, as another node would, and returns the revision.
func importRoute(t *testing.T, s store.Store, name, upstream string) int64 {
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
	rev, err := s.Import(context.Background(), ents)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// outageBound is how long an Admin API call may take to answer 503 during
// an outage: the spec's pg_timeout (1 s here) plus 1 s for a loaded
// machine. Durations are logged.
const outageBound = 2 * time.Second

// testOutageFaultProxy puts a fault proxy between the node and PostgreSQL
// and goes through latency (still reachable, slower), a black hole, resets
// and a refused port, recovering after each; meanwhile another client
// writes to the database directly.
func testOutageFaultProxy(t *testing.T) {
	pg := newPGDatabase(t)
	fp := newFaultProxy(t, "127.0.0.1:5432")
	_, port, _ := net.SplitHostPort(fp.addr)
	n := startTestNode(t, append(pg.settings(), "pg_port="+port, "db_update_frequency=100ms", "db_update_debounce=10ms", "pg_timeout=1s")...)
	up := upstreamSaying(t, "before", 0)
	mustCall(t, 201, "POST", n.admin+"/services", map[string]any{"name": "svc", "url": up})
	mustCall(t, 201, "POST", n.admin+"/services/svc/routes", map[string]any{"name": "r", "paths": []string{"/before"}})
	waitFor(t, func() bool { code, _, _ := fetch(n.proxy + "/before"); return code == 200 })
	other, err := store.OpenPostgres(context.Background(), store.PostgresOptions{Host: "127.0.0.1", User: pg.Super, Database: pg.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close() //nolint:errcheck // test cleanup

	reachable := func(want bool) func() bool {
		return func() bool {
			st, err := getAdminStatus(n.admin)
			return err == nil && st.Database != nil && st.Database.Reachable == want
		}
	}
	fp.set(faultLatency, 50*time.Millisecond)
	start := time.Now()
	mustCall(t, 201, "POST", n.admin+"/services/svc/routes", map[string]any{"name": "slow", "paths": []string{"/slow"}})
	t.Logf("latency 50 ms per chunk: an Admin API write took %v", time.Since(start).Round(time.Millisecond))
	waitFor(t, func() bool { code, _, _ := fetch(n.proxy + "/slow"); return code == 200 })
	fp.set(faultPass, 0)

	for _, fault := range []struct {
		name string
		mode faultMode
	}{{"black hole", faultBlackHole}, {"reset", faultReset}, {"refused", faultRefuse}} {
		name := strings.ReplaceAll(fault.name, " ", "-")
		fp.set(fault.mode, 0)
		start := time.Now()
		code, _, body, err := call("POST", n.admin+"/services", map[string]any{"name": "refused-" + name, "url": up})
		took := time.Since(start)
		var msg struct{ Message string }
		_ = json.Unmarshal(body, &msg)
		if err != nil || code != 503 || msg.Message != "database unreachable" || took > outageBound {
			t.Errorf("%s: Admin API write = %d %s (%v) after %v, want 503 database unreachable within %v", fault.name, code, body, err, took, outageBound)
		}
		t.Logf("%s: Admin API write refused in %v", fault.name, took.Round(time.Millisecond))
		waitFor(t, reachable(false))
		during := importRoute(t, other, name, upstreamSaying(t, name, 0))
		for i := range 20 {
			if code, body, err := fetch(n.proxy + "/before"); code != 200 || body != "before" {
				t.Fatalf("%s: proxy request %d = %d %q (%v), want the snapshot serving", fault.name, i, code, body, err)
			}
		}
		for _, url := range []string{n.status + "/status/ready", n.admin + "/status/ready"} {
			if code, body, _ := fetch(url); code != 200 {
				t.Errorf("%s: %s = %d %s, want 200", fault.name, url, code, body)
			}
		}
		fp.set(faultPass, 0)
		waitFor(t, func() bool { code, body, _ := fetch(n.proxy + "/" + name); return code == 200 && body == name })
		waitFor(t, reachable(true))
		if rev := revisionOf(n.admin); rev < during {
			t.Errorf("%s: revision after recovery = %d, want ≥ %d", fault.name, rev, during)
		}
		mustCall(t, 201, "POST", n.admin+"/services", map[string]any{"name": "after-" + name, "url": up})
	}
}
