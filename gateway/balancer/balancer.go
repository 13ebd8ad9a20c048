// Package balancer picks the Target of an Upstream for each proxied request:
// nginx's smooth weighted round-robin, least-connections and the
// consistent-hashing continuum of the gateway specification (§8.4), with the
// "fresh peer" rule for retries (§8.5).
//
// It knows nothing of HTTP or of the gateway's entities: the gateway adapts an
// Upstream to a Config and its Targets to Target values, computes the hash key
// from the request, and maps ErrNoPeer to its 503. A Balancer is built once per
// Upstream when a snapshot compiles and is safe for concurrent use; Same lets
// the gateway carry a Balancer (and so its rotation and in-flight counts) over
// a snapshot swap when nothing it depends on changed (§1.2).
package balancer

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// Algorithms, spelled as in the Upstream entity's algorithm field.
const (
	RoundRobin        = "round-robin"
	LeastConnections  = "least-connections"
	ConsistentHashing = "consistent-hashing"
)

// Limits and defaults of the Upstream and Target entities (§3.6, §3.7).
const (
	DefaultSlots = 10000
	MinSlots     = 10
	MaxSlots     = 65536
	MaxWeight    = 65535
)

// ErrNoPeer means no Target can take the request: there are none, or every
// one has weight 0. Its text is the body of the gateway's 503.
var ErrNoPeer = errors.New("failure to get a peer from the ring-balancer")

// Config is the part of an Upstream a Balancer depends on.
type Config struct {
	// Algorithm is RoundRobin, LeastConnections or ConsistentHashing;
	// "" means RoundRobin.
	Algorithm string
	// Slots is the size of the consistent-hashing continuum; 0 means
	// DefaultSlots. Other algorithms ignore it.
	Slots int
}

// Target is one Target of an Upstream.
type Target struct {
	// Host is a hostname or an IP address; an IPv6 address comes without
	// brackets. Required.
	Host string
	// Port is 1–65535. Required: the gateway stores its default (8000).
	Port int
	// Weight is 0–65535; 0 takes the Target out of rotation.
	Weight int
}

// String returns "host:port", with an IPv6 host in brackets: the form the
// consistent-hashing continuum hashes and error messages show.
func (t Target) String() string {
	host := t.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(t.Port)
}

// Balancer picks Targets for one Upstream. It is safe for concurrent use.
type Balancer struct {
	cfg     Config   // normalized: see normalize
	targets []Target // as given; indices into it identify a Target

	// live[i] reports whether targets[i] can be picked at all: weight > 0
	// and, for consistent hashing, at least one point on the continuum.
	live  []bool
	nlive int

	// unresolved[i]: the last resolution of targets[i]'s host failed (the
	// dns_error state of kong_upstream_target_health). It lives with the
	// Balancer, so it carries over a swap as the rotation does.
	unresolved []atomic.Bool

	rr *roundRobin
	lc *leastConn
	ch *continuum
}

// New validates cfg and targets and builds their Balancer. Targets keep the
// order given: round-robin and least-connections rotate in that order, so the
// gateway should pass a stable one (for example creation order). A Balancer
// without usable Targets is valid; its Pick returns ErrNoPeer.
func New(cfg Config, targets []Target) (*Balancer, error) {
	cfg = normalize(cfg)
	if err := validate(cfg, targets); err != nil {
		return nil, err
	}
	b := &Balancer{
		cfg:     cfg,
		targets: slices.Clone(targets),
		live:    make([]bool, len(targets)),

		unresolved: make([]atomic.Bool, len(targets)),
	}
	switch cfg.Algorithm {
	case RoundRobin:
		b.rr = &roundRobin{current: make([]int, len(targets))}
	case LeastConnections:
		b.lc = &leastConn{inflight: make([]atomic.Int64, len(targets))}
	case ConsistentHashing:
		b.ch = newContinuum(b.targets, cfg.Slots)
	}
	for i, t := range b.targets {
		b.live[i] = t.Weight > 0 && (b.ch == nil || b.ch.placed[i] > 0)
		if b.live[i] {
			b.nlive++
		}
	}
	return b, nil
}

// normalize applies the zero-value defaults and clears what the algorithm
// ignores, so that Same does not rebuild a Balancer for an irrelevant change.
func normalize(cfg Config) Config {
	if cfg.Algorithm == "" {
		cfg.Algorithm = RoundRobin
	}
	if cfg.Algorithm != ConsistentHashing {
		cfg.Slots = 0
	} else if cfg.Slots == 0 {
		cfg.Slots = DefaultSlots
	}
	return cfg
}

func validate(cfg Config, targets []Target) error {
	var errs []error
	switch cfg.Algorithm {
	case RoundRobin, LeastConnections:
	case ConsistentHashing:
		if cfg.Slots < MinSlots || cfg.Slots > MaxSlots {
			errs = append(errs, fmt.Errorf("slots: %d is not between %d and %d", cfg.Slots, MinSlots, MaxSlots))
		}
	default:
		errs = append(errs, fmt.Errorf("algorithm: unknown %q", cfg.Algorithm))
	}
	seen := make(map[Target]int, len(targets))
	for i, t := range targets {
		at := func() string { return fmt.Sprintf("targets[%d] %q", i, t.String()) } // only on error
		if t.Host == "" {
			errs = append(errs, fmt.Errorf("%s: host: required", at()))
		}
		if t.Port < 1 || t.Port > 65535 {
			errs = append(errs, fmt.Errorf("%s: port: %d is not between 1 and 65535", at(), t.Port))
		}
		if t.Weight < 0 || t.Weight > MaxWeight {
			errs = append(errs, fmt.Errorf("%s: weight: %d is not between 0 and %d", at(), t.Weight, MaxWeight))
		}
		// Retry state identifies Targets by host and port; two entries for
		// one address would make "fresh peer" ambiguous.
		key := Target{Host: t.Host, Port: t.Port}
		if j, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("%s: duplicate of targets[%d]", at(), j))
		} else {
			seen[key] = i
		}
	}
	return errors.Join(errs...)
}

// Same reports whether a Balancer built from cfg and targets would be this
// one, so the gateway can keep this one (and its state) across a snapshot
// swap. Targets must be equal and in the same order.
func (b *Balancer) Same(cfg Config, targets []Target) bool {
	return normalize(cfg) == b.cfg && slices.Equal(targets, b.targets)
}

// Pick is one chosen Target. Call Done exactly once when the request to it
// has finished (or failed, before retrying): least-connections counts it as
// in flight until then. Done is a no-op for the other algorithms and for the
// zero Pick.
type Pick struct {
	Target     Target
	inflight   *atomic.Int64 // least-connections only
	unresolved *atomic.Bool
}

// Done ends the pick's in-flight period.
func (p Pick) Done() {
	if p.inflight != nil {
		p.inflight.Add(-1)
	}
}

// Resolved records whether the Target's host name resolved when the pick
// was tried; Unresolved reports the last outcome. A no-op for the zero Pick.
func (p Pick) Resolved(ok bool) {
	// Load first: the usual call changes nothing and need not write to a
	// cache line every request shares.
	if p.unresolved != nil && p.unresolved.Load() == ok {
		p.unresolved.Store(!ok)
	}
}

// Unresolved reports whether the last recorded resolution of the i-th
// Target (in the order given to New) failed.
func (b *Balancer) Unresolved(i int) bool { return b.unresolved[i].Load() }

// Tries is one request's retry state with one Balancer: which Targets it has
// been given, so that a retry gets a fresh peer, and where on the continuum
// the last one was, so that consistent hashing continues past it. The zero
// value is ready for the first try. A request owns it: not safe for
// concurrent use, and meaningless with another Balancer.
type Tries struct {
	n    int    // picks so far
	last int    // target index of the last pick
	pos  int    // continuum index of the last pick (consistent hashing)
	low  uint64 // tried targets with index < 64: no allocation in the usual case
	high []int  // tried targets with index >= 64
}

// Count returns how many Targets have been picked with t.
func (t *Tries) Count() int { return t.n }

func (t *Tries) record(i, pos int) {
	t.n++
	t.last, t.pos = i, pos
	if i < 64 {
		t.low |= 1 << uint(i)
	} else if !slices.Contains(t.high, i) {
		t.high = append(t.high, i)
	}
}

func (t *Tries) tried(i int) bool {
	if i < 64 {
		return t.low&(1<<uint(i)) != 0
	}
	return slices.Contains(t.high, i)
}

// exclusion is what a pick must avoid. A retry avoids every Target already
// tried; once all have been, only the one just tried, so that retries cycle
// instead of failing; with a single live Target nothing is avoided.
type exclusion struct {
	t    *Tries
	mode uint8
}

const (
	excludeNone uint8 = iota
	excludeTried
	excludeLast
)

func (b *Balancer) exclusion(t *Tries) exclusion {
	if t == nil || t.n == 0 || b.nlive <= 1 {
		return exclusion{}
	}
	for i, ok := range b.live {
		if ok && !t.tried(i) {
			return exclusion{t, excludeTried}
		}
	}
	return exclusion{t, excludeLast}
}

func (e exclusion) skip(i int) bool {
	switch e.mode {
	case excludeTried:
		return e.t.tried(i)
	case excludeLast:
		return i == e.t.last
	}
	return false
}

// Pick chooses a Target. key is the consistent-hashing key (§8.4; other
// algorithms ignore it). tries, when not nil, is the request's retry state:
// Pick avoids the Targets it records and records the new pick. Pass nil when
// the request will never retry. Pick returns ErrNoPeer when no Target has
// weight > 0.
func (b *Balancer) Pick(key string, tries *Tries) (Pick, error) {
	if b.nlive == 0 {
		return Pick{}, ErrNoPeer
	}
	ex := b.exclusion(tries)
	var p Pick
	i, pos := -1, 0
	switch {
	case b.rr != nil:
		i = b.rr.pick(b.targets, ex)
	case b.lc != nil:
		i = b.lc.pick(b.targets, ex)
		if i >= 0 {
			p.inflight = &b.lc.inflight[i]
		}
	case b.ch != nil:
		if tries != nil && tries.n > 0 {
			pos = b.ch.next(tries.pos, ex)
		} else {
			pos = b.ch.lookup(b.ch.hash(key))
		}
		if pos >= 0 {
			i = int(b.ch.owner[pos])
		}
	}
	if i < 0 { // unreachable while nlive > 0; kept so a bug is a 503, not a panic
		return Pick{}, ErrNoPeer
	}
	if tries != nil {
		tries.record(i, pos)
	}
	p.Target = b.targets[i]
	p.unresolved = &b.unresolved[i]
	return p, nil
}
