package main

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestT42MultiNodeConvergence: two nodes share one PostgreSQL database; what
// node A's Admin API writes, node B serves. It then measures propagation
// as gateway.md §6.7 defines it — from A's 2xx to B's Admin /status
// configuration_revision reaching A's X-Datakit-Config-Revision — over 50
// writes, and logs p50/p99. The 1 s target is reported, not asserted: a
// shared CI machine makes timings noise; only a generous bound is checked.
func TestT42MultiNodeConvergence(t *testing.T) {
	pg := newPGDatabase(t)
	// Default db_update_frequency (1 s) and db_update_debounce (100 ms):
	// propagation below 1 s relies on LISTEN/NOTIFY, not the poll.
	a := startTestNode(t, pg.settings()...)
	b := startTestNode(t, pg.settings()...)
	up := upstreamSaying(t, "from upstream", 0)

	mustCall(t, 201, "POST", a.admin+"/services", map[string]any{"name": "svc", "url": up})
	mustCall(t, 201, "POST", a.admin+"/services/svc/routes", map[string]any{"name": "r0", "paths": []string{"/r0"}})
	waitFor(t, func() bool { code, body, _ := fetch(b.proxy + "/r0"); return code == 200 && body == "from upstream" })
	// B's Admin API reads the database: read-your-writes on every node.
	mustCall(t, 200, "GET", b.admin+"/routes/r0", nil)

	const writes = 50
	latencies := make([]time.Duration, 0, writes)
	for i := 1; i <= writes; i++ {
		// Alternate creating a route and changing one: both are served.
		var h map[string][]string
		var path string
		if i%2 == 1 {
			path = fmt.Sprintf("/new%d", i)
			hdr, _ := mustCall(t, 201, "POST", a.admin+"/services/svc/routes",
				map[string]any{"name": fmt.Sprintf("r%d", i), "paths": []string{path}})
			h = hdr
		} else {
			path = fmt.Sprintf("/moved%d", i)
			hdr, _ := mustCall(t, 200, "PATCH", a.admin+"/routes/r0", map[string]any{"paths": []string{path}})
			h = hdr
		}
		acked := time.Now()
		want, err := strconv.ParseInt(h["X-Datakit-Config-Revision"][0], 10, 64)
		if err != nil {
			t.Fatalf("write %d: X-Datakit-Config-Revision %v", i, h["X-Datakit-Config-Revision"])
		}
		deadline := acked.Add(5 * time.Second)
		for revisionOf(b.admin) < want {
			if time.Now().After(deadline) {
				t.Fatalf("write %d (revision %d) not active on node B within 5 s", i, want)
			}
			time.Sleep(2 * time.Millisecond)
		}
		latencies = append(latencies, time.Since(acked))
		// B's proxy serves what the revision holds.
		if code, body, err := fetch(b.proxy + path); code != 200 || body != "from upstream" {
			t.Fatalf("write %d: node B at revision %d answers %s with %d %q (%v)", i, want, path, code, body, err)
		}
	}
	slices.Sort(latencies)
	p50 := latencies[len(latencies)/2]
	p99 := latencies[(len(latencies)*99+99)/100-1]
	t.Logf("propagation A→B over %d writes (A's 2xx → B's /status revision, polled every 2 ms): "+
		"min %v, p50 %v, p99 %v, max %v (target p99 ≤ 1 s)",
		writes, latencies[0].Round(time.Millisecond), p50.Round(time.Millisecond), p99.Round(time.Millisecond),
		latencies[len(latencies)-1].Round(time.Millisecond))
	if p99 > 5*time.Second {
		t.Errorf("propagation p99 = %v, beyond any reasonable bound", p99)
	}
}
