package balancer

import (
	"cmp"
	"hash/crc32"
	"slices"
	"strconv"
)

// pointsPerTarget is how many continuum points a Target of average weight
// gets (Ketama's 160, as in Kong).
const pointsPerTarget = 160

// continuum is the consistent-hashing ring of §8.4. Only occupied positions
// are stored, ascending, so a lookup is a binary search instead of a walk over
// empty slots. It is immutable once built.
type continuum struct {
	slots  uint32
	pos    []uint32     // occupied positions, ascending
	owner  []int32      // owner[k] is the target index at pos[k]
	placed []int        // points placed per target index
	table  *crc32.Table // IEEE, read-only
}

// newContinuum places the live Targets, sorted by (host, port), one after the
// other: each gets ⌊weight ÷ total × live × 160⌋ points (at least 1) at
// crc32("<host>:<port> <i>") mod slots for i = 1, 2, …, skipping positions
// already taken. As in Kong, i stops at slots: when there are more points than
// positions, the Targets placed last get fewer points, possibly none.
func newContinuum(targets []Target, slots int) *continuum {
	c := &continuum{
		slots:  uint32(slots), // #nosec G115 -- the Upstream schema bounds slots to 10..65536
		placed: make([]int, len(targets)),
		table:  crc32.MakeTable(crc32.IEEE),
	}
	var live []int
	total := 0
	for i, t := range targets {
		if t.Weight > 0 {
			live = append(live, i)
			total += t.Weight
		}
	}
	slices.SortFunc(live, func(a, b int) int {
		return cmp.Or(cmp.Compare(targets[a].Host, targets[b].Host), cmp.Compare(targets[a].Port, targets[b].Port))
	})

	owners := make([]int32, slots) // target index + 1 per position; 0 = free
	occupied := 0
	var buf []byte
	for _, ti := range live {
		// Integer arithmetic gives the exact floor of the real-valued formula.
		need := targets[ti].Weight * len(live) * pointsPerTarget / total
		need = max(need, 1)
		prefix := targets[ti].String() + " "
		for i := 1; c.placed[ti] < need && i <= slots && occupied < slots; i++ {
			buf = strconv.AppendInt(append(buf[:0], prefix...), int64(i), 10)
			p := crc32.Checksum(buf, c.table) % c.slots
			if owners[p] == 0 {
				owners[p] = int32(ti) + 1 // #nosec G115 -- ti indexes the targets of one Upstream
				c.placed[ti]++
				occupied++
			}
		}
	}
	c.pos = make([]uint32, 0, occupied)
	c.owner = make([]int32, 0, occupied)
	for p, o := range owners {
		if o != 0 {
			c.pos = append(c.pos, uint32(p))
			c.owner = append(c.owner, o-1)
		}
	}
	return c
}

// hash is crc32 (IEEE) of key modulo slots. It loops over the string itself:
// crc32.Checksum would need a []byte conversion that allocates, as its
// argument escapes.
func (c *continuum) hash(key string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(key); i++ {
		crc = c.table[byte(crc)^key[i]] ^ crc>>8 // #nosec G115 -- the low byte indexes the table
	}
	return ^crc % c.slots
}

// lookup returns the index in pos of the first occupied position at or below
// h, walking down and wrapping to the top, or -1 on an empty continuum.
func (c *continuum) lookup(h uint32) int {
	if len(c.pos) == 0 {
		return -1
	}
	// First index whose position is > h; the one before it is at or below h.
	lo, hi := 0, len(c.pos)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.pos[m] <= h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return len(c.pos) - 1
	}
	return lo - 1
}

// next continues the walk down from index k, past it, to the first position
// whose owner ex does not exclude; -1 if there is none.
func (c *continuum) next(k int, ex exclusion) int {
	n := len(c.pos)
	for range n {
		k--
		if k < 0 {
			k = n - 1
		}
		if !ex.skip(int(c.owner[k])) {
			return k
		}
	}
	return -1
}
