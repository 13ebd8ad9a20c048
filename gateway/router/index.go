package router

import (
	"regexp/syntax"
	"strings"
)

// index narrows the matchers a request has to try without changing which one
// wins: a matcher whose paths all start with "/<segment>/" can only match a
// path with that first segment, and one whose hosts are all exact can only
// match those hosts. Each matcher sits in exactly one place, by its position
// in priority order, so merging a request's three lists in ascending order
// visits its candidates in priority order.
type index struct {
	bySegment map[string][]int32 // first path segment → matchers pinned to it
	byHost    map[string][]int32 // exact lower-case host → matchers pinned to it
	rest      []int32            // matchers pinned to neither
}

func buildIndex(ms []matcher) index {
	idx := index{bySegment: make(map[string][]int32), byHost: make(map[string][]int32)}
	for i := range ms {
		m := &ms[i]
		if segs, ok := pathPins(m.pathLiterals); ok {
			for _, s := range segs {
				idx.bySegment[s] = appendOnce(idx.bySegment[s], int32(i))
			}
			continue
		}
		if hosts, ok := hostPins(m.route.hosts); ok {
			for _, h := range hosts {
				idx.byHost[h] = appendOnce(idx.byHost[h], int32(i))
			}
			continue
		}
		idx.rest = append(idx.rest, int32(i))
	}
	return idx
}

// appendOnce appends i unless it is already last: two paths or hosts of one
// matcher may share a key.
func appendOnce(list []int32, i int32) []int32 {
	if len(list) > 0 && list[len(list)-1] == i {
		return list
	}
	return append(list, i)
}

// pathPins returns the first segment every literal pins, if each does.
func pathPins(literals []string) ([]string, bool) {
	if len(literals) == 0 {
		return nil, false
	}
	segs := make([]string, 0, len(literals))
	for _, lit := range literals {
		if !strings.HasPrefix(lit, "/") {
			return nil, false
		}
		end := strings.IndexByte(lit[1:], '/')
		if end < 0 {
			return nil, false // "/ab" also matches "/abc/…"
		}
		segs = append(segs, lit[1:1+end])
	}
	return segs, true
}

// hostPins returns the route's hosts if all are exact names.
func hostPins(hosts []hostPattern) ([]string, bool) {
	if len(hosts) == 0 {
		return nil, false
	}
	names := make([]string, 0, len(hosts))
	for i := range hosts {
		if hosts[i].wildcard() {
			return nil, false
		}
		names = append(names, hosts[i].name)
	}
	return names, true
}

// candidates returns the request's three sorted candidate lists.
func (idx *index) candidates(path, host string) (bySegment, byHost, rest []int32) {
	if strings.HasPrefix(path, "/") {
		seg := path[1:]
		if end := strings.IndexByte(seg, '/'); end >= 0 {
			seg = seg[:end]
		}
		bySegment = idx.bySegment[seg]
	}
	var buf [256]byte
	if len(host) <= len(buf) {
		lower := buf[:len(host)]
		for i := 0; i < len(host); i++ {
			c := host[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[i] = c
		}
		byHost = idx.byHost[string(lower)] // no allocation for a map key
	} else {
		byHost = idx.byHost[strings.ToLower(host)]
	}
	return bySegment, byHost, idx.rest
}

// popMin removes and returns the smallest head of the three sorted lists.
func popMin(a, b, c *[]int32) (int32, bool) {
	var min *[]int32
	for _, l := range [...]*[]int32{a, b, c} {
		if len(*l) > 0 && (min == nil || (*l)[0] < (*min)[0]) {
			min = l
		}
	}
	if min == nil {
		return 0, false
	}
	i := (*min)[0]
	*min = (*min)[1:]
	return i, true
}

// regexLiteral returns a literal that every match of the path regex re
// starts with ("" if none is known), for the index.
func regexLiteral(re string) string {
	t, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return ""
	}
	var b strings.Builder
	literalPrefix(t.Simplify(), &b)
	return b.String()
}

// literalPrefix writes t's leading case-sensitive literal and reports whether
// t is that literal entirely, so that a concatenation may continue.
func literalPrefix(t *syntax.Regexp, b *strings.Builder) bool {
	switch t.Op {
	case syntax.OpLiteral:
		if t.Flags&syntax.FoldCase != 0 {
			return false
		}
		for _, r := range t.Rune {
			b.WriteRune(r)
		}
		return true
	case syntax.OpCapture:
		return literalPrefix(t.Sub[0], b)
	case syntax.OpConcat:
		for _, sub := range t.Sub {
			if !literalPrefix(sub, b) {
				return false
			}
		}
		return true
	}
	return false
}
