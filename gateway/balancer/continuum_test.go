package balancer

import (
	"fmt"
	"hash/crc32"
	"math"
	"sort"
	"strconv"
	"testing"
)

func keyN(i int) string { return "key-" + strconv.Itoa(i) }

// specContinuum computes §8.4's continuum straight from its wording, with
// floats and fmt, independently of newContinuum: position → "host:port".
func specContinuum(targets []Target, slots int) map[int]string {
	var live []Target
	total := 0.0
	for _, t := range targets {
		if t.Weight > 0 {
			live = append(live, t)
			total += float64(t.Weight)
		}
	}
	sort.Slice(live, func(i, j int) bool {
		if live[i].Host != live[j].Host {
			return live[i].Host < live[j].Host
		}
		return live[i].Port < live[j].Port
	})
	ring := map[int]string{}
	for _, t := range live {
		points := int(math.Floor(float64(t.Weight) / total * float64(len(live)) * 160))
		if points < 1 {
			points = 1
		}
		name := fmt.Sprintf("%s:%d", t.Host, t.Port)
		for i, placed := 1, 0; placed < points && i <= slots && len(ring) < slots; i++ {
			p := int(crc32.ChecksumIEEE([]byte(fmt.Sprintf("%s %d", name, i))) % uint32(slots))
			if _, taken := ring[p]; !taken {
				ring[p] = name
				placed++
			}
		}
	}
	return ring
}

// specWalk is where a hash lands: walking down from it, wrapping, to the
// first occupied position, then past positions of already tried targets.
func specWalk(ring map[int]string, slots int, key string, tried map[string]bool) (string, int) {
	p := int(crc32.ChecksumIEEE([]byte(key)) % uint32(slots))
	for range slots {
		if name, ok := ring[p]; ok && !tried[name] {
			return name, p
		}
		if p--; p < 0 {
			p = slots - 1
		}
	}
	return "", -1
}

func ringOf(b *Balancer) map[int]string {
	ring := map[int]string{}
	for k, p := range b.ch.pos {
		ring[int(p)] = b.targets[b.ch.owner[k]].String()
	}
	return ring
}

func TestContinuumPlacement(t *testing.T) {
	tests := []struct {
		name    string
		slots   int
		targets []Target
		points  map[string]int // expected points per target, from the formula by hand
	}{
		{"weights 1:3, unsorted", 1000, []Target{tg("b", 80, 1), tg("a", 80, 3)},
			map[string]int{"a:80": 240, "b:80": 80}}, // 3/4×2×160, 1/4×2×160
		{"tiny weight gets one point", 10000, []Target{tg("x", 1, 1), tg("y", 1, 1000), tg("y", 2, 1000)},
			map[string]int{"x:1": 1, "y:1": 239, "y:2": 239}}, // ⌊0.24⌋→1, ⌊239.88⌋
		{"weight 0 excluded", 1000, []Target{tg("a", 80, 100), tg("z", 80, 0)},
			map[string]int{"a:80": 160}},
		{"more points than slots", 10, []Target{tg("a", 80, 100), tg("b", 80, 100)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustNew(t, Config{Algorithm: ConsistentHashing, Slots: tt.slots}, tt.targets)
			want := specContinuum(tt.targets, tt.slots)
			got := ringOf(b)
			if len(got) != len(want) {
				t.Errorf("continuum has %d points, want %d", len(got), len(want))
			}
			for p, name := range want {
				if got[p] != name {
					t.Errorf("position %d = %q, want %q", p, got[p], name)
				}
			}
			counts := map[string]int{}
			for _, name := range got {
				counts[name]++
			}
			for name, n := range tt.points {
				if counts[name] != n {
					t.Errorf("%s has %d points, want %d", name, counts[name], n)
				}
			}
			for i := range 2000 {
				key := keyN(i)
				wantName, _ := specWalk(want, tt.slots, key, nil)
				p, err := b.Pick(key, nil)
				if err != nil || p.Target.String() != wantName {
					t.Fatalf("Pick(%q) = %v, %v, want %s", key, p.Target, err, wantName)
				}
			}
		})
	}
}

func TestContinuumFullKeepsEveryTargetReachableHere(t *testing.T) {
	// With 10 slots and 320 points the first target takes most positions;
	// the second still gets the rest (i runs up to slots), so both are live.
	b := mustNew(t, Config{Algorithm: ConsistentHashing, Slots: 10}, []Target{tg("a", 80, 100), tg("b", 80, 100)})
	if len(b.ch.pos) == 0 || b.nlive != 2 {
		t.Fatalf("continuum %v points, %d live targets; want a full ring of both", len(b.ch.pos), b.nlive)
	}
}

func TestConsistentHashingSameKeySameTarget(t *testing.T) {
	b := mustNew(t, Config{Algorithm: ConsistentHashing}, []Target{tg("a", 80, 100), tg("b", 80, 100), tg("c", 80, 100)})
	for i := range 200 {
		first, _ := b.Pick(keyN(i), nil)
		for range 5 {
			if p, _ := b.Pick(keyN(i), nil); p.Target != first.Target {
				t.Fatalf("Pick(%q) = %v, then %v", keyN(i), first.Target, p.Target)
			}
		}
	}
}

func TestConsistentHashingRetryContinuesDown(t *testing.T) {
	targets := []Target{tg("a", 80, 100), tg("b", 80, 50), tg("c", 80, 100), tg("d", 8000, 10)}
	const slots = 500
	b := mustNew(t, Config{Algorithm: ConsistentHashing, Slots: slots}, targets)
	ring := specContinuum(targets, slots)
	for i := range 500 {
		key := keyN(i)
		var tries Tries
		tried := map[string]bool{}
		for try := range len(targets) {
			// Walking past the tried targets from the hash equals walking on
			// from the position just tried: every position in between
			// belongs to a tried target.
			want, _ := specWalk(ring, slots, key, tried)
			p, err := b.Pick(key, &tries)
			if err != nil || p.Target.String() != want {
				t.Fatalf("Pick(%q) try %d = %v, %v, want %s", key, try, p.Target, err, want)
			}
			tried[want] = true
		}
	}
}

func TestConsistentHashingDistribution(t *testing.T) {
	b := mustNew(t, Config{Algorithm: ConsistentHashing}, []Target{tg("a", 80, 100), tg("b", 80, 200), tg("c", 80, 100)})
	counts := map[string]int{}
	const n = 40000
	for i := range n {
		p, _ := b.Pick(keyN(i), nil)
		counts[p.Target.Host]++
	}
	// Arcs are random, so shares only approximate weights (±25 %).
	for host, share := range map[string]float64{"a": 0.25, "b": 0.5, "c": 0.25} {
		got := float64(counts[host]) / n
		if got < share*0.75 || got > share*1.25 {
			t.Errorf("share of %s = %.3f, want about %.2f (counts %v)", host, got, share, counts)
		}
	}
}

func TestConsistentHashingStableWhenAddingTarget(t *testing.T) {
	targets := []Target{tg("10.0.0.1", 80, 100), tg("10.0.0.2", 80, 100), tg("10.0.0.3", 80, 100), tg("10.0.0.4", 80, 100)}
	before := mustNew(t, Config{Algorithm: ConsistentHashing}, targets)
	after := mustNew(t, Config{Algorithm: ConsistentHashing}, append(targets[:4:4], tg("10.0.0.0", 80, 100)))
	const n = 20000
	kept, toNew := 0, 0
	for i := range n {
		p1, _ := before.Pick(keyN(i), nil)
		p2, _ := after.Pick(keyN(i), nil)
		switch {
		case p1.Target == p2.Target:
			kept++
		case p2.Target.Host == "10.0.0.0":
			toNew++
		}
	}
	// Ideally 4/5 stay and every move goes to the new target; the new one
	// sorts first, so collisions shift a few of the others' points too.
	if kept < n*7/10 {
		t.Errorf("%d of %d keys kept their target, want at least 70%%", kept, n)
	}
	if moved := n - kept; toNew < moved*9/10 {
		t.Errorf("%d of %d moved keys went to the new target, want at least 90%%", toNew, moved)
	}
}

func TestHashMatchesCRC32(t *testing.T) {
	c := newContinuum(nil, MaxSlots)
	for _, key := range []string{"", "a", "10.0.0.1", "consumer-uuid-1234", "/some/path?x=1", "\xff\x00é"} {
		if got, want := c.hash(key), crc32.ChecksumIEEE([]byte(key))%MaxSlots; got != want {
			t.Errorf("hash(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestContinuumOverfullDropsLastTargets(t *testing.T) {
	// 100 equal targets need 16000 points; 10000 slots fill up before the
	// last targets (in host order) are placed. They cannot be picked, and a
	// retry that has tried every reachable one cycles among those.
	var targets []Target
	for i := range 100 {
		targets = append(targets, tg(fmt.Sprintf("h%03d", i), 80, 1))
	}
	b := mustNew(t, Config{Algorithm: ConsistentHashing}, targets)
	if len(b.ch.pos) != DefaultSlots {
		t.Errorf("continuum has %d points, want all %d slots", len(b.ch.pos), DefaultSlots)
	}
	if b.nlive >= 100 || !b.live[0] || b.live[99] {
		t.Errorf("%d live targets, first live %v, last live %v; want the first placed only", b.nlive, b.live[0], b.live[99])
	}
	for i := range 1000 {
		p, err := b.Pick(keyN(i), nil)
		if err != nil || !b.live[indexOf(targets, p.Target)] {
			t.Fatalf("Pick(%q) = %v, %v, want a placed target", keyN(i), p.Target, err)
		}
	}
}

func indexOf(ts []Target, t Target) int {
	for i := range ts {
		if ts[i] == t {
			return i
		}
	}
	return -1
}
