package balancer

import (
	"sync"
	"sync/atomic"
)

// roundRobin is nginx's smooth weighted round-robin
// (ngx_http_upstream_get_peer): each pick adds every candidate's weight to its
// current weight, takes the highest (the first on ties) and subtracts the
// candidates' total from it. Picks of a heavy Target are spread out instead of
// bunched: weights {5, 1, 1} give a a b a c a a.
type roundRobin struct {
	mu      sync.Mutex
	current []int // per target index; guarded by mu
}

// pick returns the chosen target index, or -1 when none is eligible.
// Excluded Targets neither gain nor lose current weight, as tried peers in
// nginx.
func (r *roundRobin) pick(targets []Target, ex exclusion) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	best, total := -1, 0
	for i := range targets {
		w := targets[i].Weight
		if w == 0 || ex.skip(i) {
			continue
		}
		r.current[i] += w
		total += w
		if best < 0 || r.current[i] > r.current[best] {
			best = i
		}
	}
	if best >= 0 {
		r.current[best] -= total
	}
	return best
}

// leastConn picks the Target with the lowest in-flight ÷ weight. Ties go in
// round-robin order: the scan starts after the previous pick, and only a
// strictly lower load replaces the first candidate found.
type leastConn struct {
	mu       sync.Mutex // serializes picks so the rotation and the increments agree
	next     int        // guarded by mu
	inflight []atomic.Int64
}

// pick returns the chosen target index, or -1 when none is eligible, and
// counts it in flight. Done decrements without the lock: a pick racing a Done
// sees the load just before or just after it, both fine.
func (l *leastConn) pick(targets []Target, ex exclusion) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(targets)
	best := -1
	var bestLoad, bestWeight int64
	for k := range n {
		i := l.next + k
		if i >= n {
			i -= n
		}
		w := int64(targets[i].Weight)
		if w == 0 || ex.skip(i) {
			continue
		}
		load := l.inflight[i].Load()
		// load/w < bestLoad/bestWeight without division; weights are at most
		// 65535, so the products cannot overflow.
		if best < 0 || load*bestWeight < bestLoad*w {
			best, bestLoad, bestWeight = i, load, w
		}
	}
	if best >= 0 {
		l.inflight[best].Add(1)
		l.next = best + 1
		if l.next == n {
			l.next = 0
		}
	}
	return best
}
