package balancer

import "testing"

// TestResolved: a pick records its Target's name resolution; Unresolved
// reports the last outcome per Target, for every algorithm.
func TestResolved(t *testing.T) {
	for _, algo := range []string{RoundRobin, LeastConnections, ConsistentHashing} {
		t.Run(algo, func(t *testing.T) {
			b := mustNew(t, Config{Algorithm: algo}, []Target{tg("a.test", 80, 100), tg("b.test", 80, 100)})
			p, err := b.Pick("key", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Done()
			picked := 0
			if p.Target.Host == "b.test" {
				picked = 1
			}
			check := func(step string, want bool) {
				t.Helper()
				if got := b.Unresolved(picked); got != want {
					t.Errorf("%s: Unresolved(%d) = %t, want %t", step, picked, got, want)
				}
				if b.Unresolved(1 - picked) {
					t.Errorf("%s: Unresolved(%d) = true for the Target not picked", step, 1-picked)
				}
			}
			check("new", false)
			p.Resolved(false)
			check("after a failed resolution", true)
			p.Resolved(true)
			check("after a resolution", false)
			Pick{}.Resolved(false) // the zero Pick records nothing
		})
	}
}
