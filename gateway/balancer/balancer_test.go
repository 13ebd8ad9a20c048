package balancer

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

func tg(host string, port, weight int) Target { return Target{Host: host, Port: port, Weight: weight} }

func mustNew(t *testing.T, cfg Config, targets []Target) *Balancer {
	t.Helper()
	b, err := New(cfg, targets)
	if err != nil {
		t.Fatalf("New(%+v, %v) = %v", cfg, targets, err)
	}
	return b
}

// picks returns the hosts of n picks (Done called at once).
func picks(t *testing.T, b *Balancer, key string, n int) string {
	t.Helper()
	var sb strings.Builder
	for range n {
		p, err := b.Pick(key, nil)
		if err != nil {
			t.Fatalf("Pick(%q) = %v", key, err)
		}
		p.Done()
		sb.WriteString(p.Target.Host)
	}
	return sb.String()
}

var algorithms = []string{RoundRobin, LeastConnections, ConsistentHashing}

func TestRoundRobinNginxSequence(t *testing.T) {
	// nginx's documented example (ngx_http_upstream_round_robin.c): weights
	// {5, 1, 1} give a a b a c a a, and the cycle repeats.
	b := mustNew(t, Config{Algorithm: RoundRobin}, []Target{tg("a", 80, 5), tg("b", 80, 1), tg("c", 80, 1)})
	if got, want := picks(t, b, "", 14), "aabacaa"+"aabacaa"; got != want {
		t.Errorf("picks = %q, want %q", got, want)
	}
}

func TestRoundRobinDefaultAlgorithm(t *testing.T) {
	b := mustNew(t, Config{}, []Target{tg("a", 80, 1), tg("b", 80, 2)})
	if got, want := picks(t, b, "", 6), "babbab"; got != want {
		t.Errorf("picks = %q, want %q", got, want)
	}
}

func TestRoundRobinDistributionExact(t *testing.T) {
	b := mustNew(t, Config{Algorithm: RoundRobin}, []Target{tg("a", 80, 7), tg("b", 80, 2), tg("c", 80, 0), tg("d", 80, 1)})
	counts := map[byte]int{}
	for _, h := range []byte(picks(t, b, "", 10*1000)) {
		counts[h]++
	}
	want := map[byte]int{'a': 7000, 'b': 2000, 'd': 1000}
	for h, n := range want {
		if counts[h] != n {
			t.Errorf("count[%c] = %d, want %d (all: %v)", h, counts[h], n, counts)
		}
	}
	if counts['c'] != 0 {
		t.Errorf("weight-0 target picked %d times", counts['c'])
	}
}

func TestLeastConnectionsDistributionInFlight(t *testing.T) {
	// Without Done, in-flight counts settle proportional to weights.
	b := mustNew(t, Config{Algorithm: LeastConnections}, []Target{tg("a", 80, 5), tg("b", 80, 1), tg("c", 80, 1), tg("z", 80, 0)})
	counts := map[string]int{}
	var held []Pick
	for range 700 {
		p, err := b.Pick("", nil)
		if err != nil {
			t.Fatalf("Pick = %v", err)
		}
		counts[p.Target.Host]++
		held = append(held, p)
	}
	if counts["a"] != 500 || counts["b"] != 100 || counts["c"] != 100 || counts["z"] != 0 {
		t.Errorf("counts = %v, want a:500 b:100 c:100", counts)
	}
	for _, p := range held {
		p.Done()
	}
	for i := range b.lc.inflight {
		if n := b.lc.inflight[i].Load(); n != 0 {
			t.Errorf("inflight[%d] = %d after Done, want 0", i, n)
		}
	}
}

func TestLeastConnections(t *testing.T) {
	b := mustNew(t, Config{Algorithm: LeastConnections}, []Target{tg("a", 80, 1), tg("b", 80, 1), tg("c", 80, 2)})
	pick := func() Pick {
		t.Helper()
		p, err := b.Pick("", nil)
		if err != nil {
			t.Fatalf("Pick = %v", err)
		}
		return p
	}
	// All idle: a tie, broken in round-robin order.
	if got := picks(t, b, "", 6); got != "abcabc" {
		t.Errorf("idle picks = %q, want %q", got, "abcabc")
	}
	// The rotation now starts at a. Hold a: b and c are idle (0 < 1/1).
	pa := pick() // a: 1/1
	if p := pick(); p.Target.Host != "b" {
		t.Errorf("second pick = %s, want b", p.Target.Host)
	} // b: 1/1
	if p := pick(); p.Target.Host != "c" {
		t.Errorf("third pick = %s, want c", p.Target.Host)
	} // c: 1/2, the lowest
	if p := pick(); p.Target.Host != "c" {
		t.Errorf("fourth pick = %s, want c (1/2 < 1/1)", p.Target.Host)
	} // c: 2/2; all tie at 1 and the rotation is after c
	if p := pick(); p.Target.Host != "a" {
		t.Errorf("fifth pick = %s, want a (tie, round-robin order)", p.Target.Host)
	} // a: 2/1
	pa.Done() // a: 1/1
	pa2 := pick()
	if pa2.Target.Host != "b" {
		t.Errorf("sixth pick = %s, want b (tie a,b,c at 1, rotation after a)", pa2.Target.Host)
	}
}

func TestWeightZeroNeverPicked(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			b := mustNew(t, Config{Algorithm: alg}, []Target{tg("z", 1, 0), tg("a", 80, 1), tg("y", 2, 0), tg("b", 80, 3)})
			for i := range 2000 {
				p, err := b.Pick(keyN(i), nil)
				if err != nil {
					t.Fatalf("Pick = %v", err)
				}
				if p.Target.Weight == 0 {
					t.Fatalf("Pick(%q) = %v, a weight-0 target", keyN(i), p.Target)
				}
				p.Done()
			}
		})
	}
}

func TestNoPeer(t *testing.T) {
	for _, alg := range algorithms {
		for name, targets := range map[string][]Target{
			"none":     nil,
			"weight 0": {tg("a", 80, 0), tg("b", 80, 0)},
		} {
			t.Run(alg+"/"+name, func(t *testing.T) {
				b := mustNew(t, Config{Algorithm: alg}, targets)
				var tries Tries
				if _, err := b.Pick("k", &tries); !errors.Is(err, ErrNoPeer) {
					t.Errorf("Pick = %v, want ErrNoPeer", err)
				}
				if tries.Count() != 0 {
					t.Errorf("tries.Count() = %d after a failed pick, want 0", tries.Count())
				}
			})
		}
	}
	if got := ErrNoPeer.Error(); got != "failure to get a peer from the ring-balancer" {
		t.Errorf("ErrNoPeer = %q", got)
	}
}

func TestRetryFreshPeer(t *testing.T) {
	targets := []Target{tg("a", 80, 5), tg("b", 80, 1), tg("c", 80, 1), tg("z", 80, 0)}
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			b := mustNew(t, Config{Algorithm: alg}, targets)
			for i := range 50 {
				var tries Tries
				seen := map[string]bool{}
				var prev string
				for try := range 7 {
					p, err := b.Pick(keyN(i), &tries)
					if err != nil {
						t.Fatalf("Pick = %v", err)
					}
					p.Done()
					h := p.Target.Host
					switch {
					case try < 3 && seen[h]:
						t.Fatalf("key %d try %d: %s again before every target was tried", i, try, h)
					case try >= 3 && h == prev:
						t.Fatalf("key %d try %d: %s twice in a row", i, try, h)
					}
					seen[h], prev = true, h
				}
				if tries.Count() != 7 {
					t.Errorf("Count() = %d, want 7", tries.Count())
				}
			}
		})
	}
}

func TestRetrySingleTarget(t *testing.T) {
	for _, alg := range algorithms {
		b := mustNew(t, Config{Algorithm: alg}, []Target{tg("a", 80, 1), tg("z", 80, 0)})
		var tries Tries
		for range 3 {
			p, err := b.Pick("k", &tries)
			if err != nil || p.Target.Host != "a" {
				t.Errorf("%s: Pick = %v, %v, want a (the only peer, again)", alg, p.Target, err)
			}
			p.Done()
		}
	}
}

func TestRetryManyTargets(t *testing.T) {
	// Tried targets past index 63 are tracked outside the bitmask. 100
	// targets need 16000 points: more than the default slots hold.
	var targets []Target
	for i := range 100 {
		targets = append(targets, tg(keyN(i), 80, 1))
	}
	for _, alg := range algorithms {
		b := mustNew(t, Config{Algorithm: alg, Slots: MaxSlots}, targets)
		var tries Tries
		seen := map[string]bool{}
		for range 100 {
			p, err := b.Pick("k", &tries)
			if err != nil {
				t.Fatalf("%s: Pick = %v", alg, err)
			}
			if seen[p.Target.Host] {
				t.Fatalf("%s: %s picked twice within 100 tries of 100 targets", alg, p.Target.Host)
			}
			seen[p.Target.Host] = true
			p.Done()
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		cfg     Config
		targets []Target
		want    []string // substrings, all required
	}{
		{Config{Algorithm: "random"}, nil, []string{`algorithm: unknown "random"`}},
		{Config{Algorithm: ConsistentHashing, Slots: 9}, nil, []string{"slots: 9 is not between 10 and 65536"}},
		{Config{Algorithm: ConsistentHashing, Slots: 65537}, nil, []string{"slots: 65537 is not between"}},
		{Config{}, []Target{tg("", 80, 1), tg("a", 0, -1), tg("::1", 70000, 65536), tg("a", 0, 1)}, []string{
			`targets[0] ":80": host: required`,
			`targets[1] "a:0": port: 0 is not between 1 and 65535`,
			`targets[1] "a:0": weight: -1 is not between 0 and 65535`,
			`targets[2] "[::1]:70000": port: 70000`,
			`targets[2] "[::1]:70000": weight: 65536`,
			`targets[3] "a:0": duplicate of targets[1]`,
		}},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg, tt.targets)
		if err == nil {
			t.Errorf("New(%+v, %v) = nil, want errors %q", tt.cfg, tt.targets, tt.want)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("New(%+v, %v) = %q, want it to contain %q", tt.cfg, tt.targets, err, w)
			}
		}
	}
	// Slots matter to consistent hashing only.
	if _, err := New(Config{Algorithm: RoundRobin, Slots: 3}, nil); err != nil {
		t.Errorf("New(round-robin, slots 3) = %v, want nil", err)
	}
}

func TestSame(t *testing.T) {
	targets := []Target{tg("a", 80, 5), tg("b", 80, 1)}
	tests := []struct {
		name    string
		cfg     Config
		other   Config
		targets []Target
		want    bool
	}{
		{"identical", Config{}, Config{}, targets, true},
		{"default algorithm", Config{}, Config{Algorithm: RoundRobin}, targets, true},
		{"slots ignored by round-robin", Config{Slots: 100}, Config{Slots: 200}, targets, true},
		{"default slots", Config{Algorithm: ConsistentHashing}, Config{Algorithm: ConsistentHashing, Slots: DefaultSlots}, targets, true},
		{"slots", Config{Algorithm: ConsistentHashing, Slots: 100}, Config{Algorithm: ConsistentHashing, Slots: 200}, targets, false},
		{"algorithm", Config{}, Config{Algorithm: LeastConnections}, targets, false},
		{"weight", Config{}, Config{}, []Target{tg("a", 80, 5), tg("b", 80, 2)}, false},
		{"order", Config{}, Config{}, []Target{tg("b", 80, 1), tg("a", 80, 5)}, false},
		{"added", Config{}, Config{}, append(targets[:2:2], tg("c", 80, 1)), false},
	}
	for _, tt := range tests {
		b := mustNew(t, tt.cfg, targets)
		if got := b.Same(tt.other, tt.targets); got != tt.want {
			t.Errorf("%s: Same(%+v, %v) = %v, want %v", tt.name, tt.other, tt.targets, got, tt.want)
		}
	}
}

func TestStateCarriesOver(t *testing.T) {
	// What Same enables: a kept Balancer continues its rotation, as if no
	// swap had happened.
	targets := []Target{tg("a", 80, 5), tg("b", 80, 1), tg("c", 80, 1)}
	b := mustNew(t, Config{}, targets)
	first := picks(t, b, "", 3)
	if !b.Same(Config{Algorithm: RoundRobin}, slicesClone(targets)) {
		t.Fatal("Same = false for an unchanged upstream")
	}
	if got := first + picks(t, b, "", 4); got != "aabacaa" {
		t.Errorf("picks across the swap = %q, want %q", got, "aabacaa")
	}
}

func slicesClone(ts []Target) []Target { return append([]Target(nil), ts...) }

func TestConcurrentPicks(t *testing.T) {
	targets := []Target{tg("a", 80, 5), tg("b", 80, 1), tg("c", 80, 1), tg("z", 80, 0)}
	const workers, each = 8, 7 * 250
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			b := mustNew(t, Config{Algorithm: alg}, targets)
			var mu sync.Mutex
			counts := map[string]int{}
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					local := map[string]int{}
					for i := range each {
						var tries Tries
						p, err := b.Pick(keyN(w*each+i), &tries)
						if err != nil {
							t.Errorf("Pick = %v", err)
							return
						}
						if i%10 == 0 { // a retry now and then
							p.Done()
							if p, err = b.Pick("", &tries); err != nil {
								t.Errorf("retry Pick = %v", err)
								return
							}
						}
						local[p.Target.Host]++
						p.Done()
					}
					mu.Lock()
					defer mu.Unlock()
					for h, n := range local {
						counts[h] += n
					}
				})
			}
			wg.Wait()
			if counts["z"] != 0 {
				t.Errorf("weight-0 target picked %d times", counts["z"])
			}
			if total := counts["a"] + counts["b"] + counts["c"]; total != workers*each {
				t.Errorf("total picks = %d, want %d", total, workers*each)
			}
			if b.lc != nil {
				for i := range b.lc.inflight {
					if n := b.lc.inflight[i].Load(); n != 0 {
						t.Errorf("inflight[%d] = %d after all Done, want 0", i, n)
					}
				}
			}
		})
	}
}

func TestTargetString(t *testing.T) {
	for _, tt := range []struct {
		t    Target
		want string
	}{
		{tg("example.com", 8000, 1), "example.com:8000"},
		{tg("10.0.0.1", 80, 1), "10.0.0.1:80"},
		{tg("::1", 443, 1), "[::1]:443"},
	} {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.t, got, tt.want)
		}
	}
}
