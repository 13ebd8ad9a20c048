package nodes

import (
	"fmt"
	"maps"
	"math"
	"math/big"
	"strconv"
	"sync"

	"github.com/itchyny/gojq"
)

// The jq operation guard (hardening §2.8). A deadline stops loops between
// opcodes, but one builtin runs to its end first: `"a" * 1e9` allocates a
// gigabyte before anyone looks at the clock. So at compile time filters are
// rewritten to call checked operators, and a prelude shadows the builtins
// that can build large values; each check estimates the result from its
// operands before anything is allocated.

// jqGuard compiles filters with the guard: the checked functions, the
// prelude and the rewrite. Immutable and safe for concurrent use: gojq
// only reads the prelude's syntax tree, which every filter shares.
type jqGuard struct {
	*jqLimits
	prelude     []*gojq.FuncDef
	preludeDeps [][]int           // for each definition, those it calls
	preludeFunc map[jqFuncKey]int // a name's last definition
	options     []gojq.CompilerOption
	// gojq's own operators, run for the operands the fast paths leave.
	addCode, mulCode *gojq.Code
	regex            *jqRegex
}

// jqPrelude shadows the builtins that build values without passing the
// rewritten operators. A definition sees only those before it: the
// _dk_native_* wrappers, defined first, reach gojq's builtins, and every
// function comes after those it calls. gojq's pick, fromstream and regex
// functions are repeated here (from gojq v0.12.20's builtin.jq, reordered)
// because gojq's own call its setpath and _match directly.
// setpath binds its arguments in the order gojq's does: the value outside.
// Operators in the prelude are rewritten like the filter's; their checks
// call _dk_path, which a filter cannot redefine, unlike path.
const jqPrelude = `
def _dk_path(f): path(f);
def _dk_native_setpath($p; $v): setpath($p; $v);
def _dk_native_join($x): join($x);
def _dk_native_add: add;
def setpath(p; $v): p as $p | _dk_checkpath($p) | _dk_native_setpath($p; $v);
def join($x): _dk_checkjoin($x) | _dk_native_join($x);
def add: _dk_checkadd | _dk_native_add;
def add(f): [f] | add;
def pick(f): . as $v |
  reduce path(f) as $p (null; setpath($p; $v | getpath($p)));
def fromstream(f):
  foreach f as $pv (
    null;
    if .e then null end |
    $pv as [$p, $v] |
    if $pv | length == 2 then
      setpath(["v"] + $p; $v) |
      setpath(["e"]; $p | length == 0)
    else
      setpath(["e"]; $p | length == 1)
    end;
    if .e then .v else empty end
  );
def match($re; $flags): _dk_match($re; $flags; false)[];
def match($re):
  if $re | type == "array" then match($re[0]; $re[1]) else match($re; null) end;
def test($re; $flags): _dk_match($re; $flags; true);
def test($re):
  if $re | type == "array" then test($re[0]; $re[1]) else test($re; null) end;
def capture($re; $flags): match($re; $flags) | .captures | _captures;
def capture($re):
  if $re | type == "array" then capture($re[0]; $re[1]) else capture($re; null) end;
def scan($re; $flags):
  match($re; $flags + "g") |
  if .captures == [] then
    .string
  else
    [.captures[].string]
  end;
def scan($re): scan($re; null);
def splits($re; $flags):
  .[foreach (match($re; $flags + "g"), null) as {$offset, $length}
      (null; {start: .next, end: $offset, next: $offset + $length})];
def splits($re): splits($re; null);
def split($re; $flags): [splits($re; $flags)];
def sub($re; str; $flags):
  reduce match($re; $flags) as {$offset, $length, $captures}
    ({s: ., r: []};
      reduce ($captures | _captures | str) as $s
        (.i = 0; .r[.i] += .s[.next:$offset] + $s | .i += 1) |
      .next = $offset + $length) | .r[] + .s[.next:] // .s;
def sub($re; str): sub($re; str; null);
def gsub($re; str; $flags): sub($re; str; $flags + "g");
def gsub($re; str): sub($re; str; "g");
.`

// newJQGuard sets up the guard for a kind. Its filters are constants: an
// error in them is a bug, hence the panic.
func newJQGuard(d Deps) *jqGuard {
	g := &jqGuard{jqLimits: newJQLimits(d)}
	g.options = []gojq.CompilerOption{
		gojq.WithFunction("_dk_add", 2, 2, g.add),
		gojq.WithFunction("_dk_mul", 2, 2, g.mul),
		gojq.WithFunction("_dk_checkpath", 1, 1, g.checkPath),
		gojq.WithFunction("_dk_checkjoin", 1, 1, g.checkJoin),
		gojq.WithFunction("_dk_checkadd", 0, 0, g.checkAdd),
		gojq.WithFunction("_dk_match", 3, 3, g.match),
	}
	g.regex = &jqRegex{query: mustParseJQ("_match($re; $flags; $test)")}
	g.addCode = mustCompileJQ(mustParseJQ(".[0] + .[1]"))
	g.mulCode = mustCompileJQ(mustParseJQ(".[0] * .[1]"))
	p := mustParseJQ(jqPrelude)
	g.rewrite(p)
	g.prelude = p.FuncDefs
	g.preludeDeps = make([][]int, len(p.FuncDefs))
	g.preludeFunc = make(map[jqFuncKey]int, len(p.FuncDefs))
	for i, fd := range p.FuncDefs {
		jqWalk(fd.Body, func(t *gojq.Term) {
			if j, ok := g.preludeFunc[jqFuncKeyOf(t)]; ok {
				g.preludeDeps[i] = append(g.preludeDeps[i], j)
			}
		}, nil)
		g.preludeFunc[jqFuncKey{fd.Name, len(fd.Args)}] = i
	}
	return g
}

// jqFuncKey names a function as jq tells them apart: name and arity.
type jqFuncKey struct {
	name  string
	arity int
}

// jqFuncKeyOf is the function a term calls, if any.
func jqFuncKeyOf(t *gojq.Term) jqFuncKey {
	if t.Func == nil {
		return jqFuncKey{}
	}
	return jqFuncKey{t.Func.Name, len(t.Func.Args)}
}

func mustParseJQ(src string) *gojq.Query {
	q, err := gojq.Parse(src)
	if err != nil {
		panic(fmt.Sprintf("jq guard: %q: %v", src, err))
	}
	return q
}

func mustCompileJQ(q *gojq.Query, options ...gojq.CompilerOption) *gojq.Code {
	code, err := gojq.Compile(q, options...)
	if err != nil {
		panic(fmt.Sprintf("jq guard: %q: %v", q, err))
	}
	return code
}

// guard rewrites a parsed and validated filter in place and puts before
// its definitions those of the prelude it calls (each costs a step per
// evaluation); compile it with g.options.
func (g *jqGuard) guard(q *gojq.Query) {
	g.rewrite(q)
	need := make([]bool, len(g.prelude))
	var mark func(i int)
	mark = func(i int) {
		if !need[i] {
			need[i] = true
			for _, j := range g.preludeDeps[i] {
				mark(j)
			}
		}
	}
	jqWalk(q, func(t *gojq.Term) {
		if i, ok := g.preludeFunc[jqFuncKeyOf(t)]; ok {
			mark(i)
		}
	}, nil)
	var defs []*gojq.FuncDef
	for i, fd := range g.prelude {
		if need[i] {
			defs = append(defs, fd)
		}
	}
	q.FuncDefs = append(defs, q.FuncDefs...)
}

// compileOptions are the options to compile a guarded filter binding vars.
func (g *jqGuard) compileOptions(vars []string) []gojq.CompilerOption {
	return append(g.options[:len(g.options):len(g.options)], gojq.WithVariables(vars))
}

// Names the rewrite binds. `%` cannot appear in a filter's own names.
const (
	jqLHS     = "_dk_lhs"
	jqPathVar = "$%dk_path"
	jqRHSVar  = "$%dk_rhs"
)

// rewrite replaces, bottom up, `a + b` by `_dk_add(a; b)`, `a * b` by
// `_dk_mul(a; b)` and checks the paths of assignments (rewriteUpdate).
func (g *jqGuard) rewrite(q *gojq.Query) {
	jqWalk(q, nil, func(q *gojq.Query) {
		switch q.Op {
		case gojq.OpAdd:
			replaceQuery(q, jqCall("_dk_add", q.Left, q.Right))
		case gojq.OpMul:
			replaceQuery(q, jqCall("_dk_mul", q.Left, q.Right))
		case gojq.OpAssign, gojq.OpModify, gojq.OpUpdateAdd, gojq.OpUpdateSub,
			gojq.OpUpdateMul, gojq.OpUpdateDiv, gojq.OpUpdateMod, gojq.OpUpdateAlt:
			g.rewriteUpdate(q)
		}
	})
}

// rewriteUpdate checks the paths of `a op b` before assigning:
//
//	def _dk_lhs: a; (reduce (try _dk_path(_dk_lhs)) as $p (.; _dk_checkpath($p))) | _dk_lhs op b
//
// with `a += b` as `(b) as $x | a |= _dk_add(.; $x)`, likewise `*=`. The
// check swallows errors of path(a): the assignment then raises them as gojq
// would. a is defined once, not repeated, so that assignments nested in
// paths cannot grow the program exponentially. Paths known at compile time
// to stay within the limit need no check (staticPathOK).
func (g *jqGuard) rewriteUpdate(q *gojq.Query) {
	lhs, op, rhs := q.Left, q.Op, q.Right
	checked := !g.staticPathOK(lhs)
	if checked {
		q.FuncDefs = append(q.FuncDefs, &gojq.FuncDef{Name: jqLHS, Body: lhs})
		lhs = jqCall(jqLHS)
	}
	var upd *gojq.Query
	switch op {
	case gojq.OpUpdateAdd, gojq.OpUpdateMul:
		fn := "_dk_add"
		if op == gojq.OpUpdateMul {
			fn = "_dk_mul"
		}
		upd = &gojq.Query{Left: rhs, Op: gojq.OpPipe, Patterns: []*gojq.Pattern{{Name: jqRHSVar}},
			Right: &gojq.Query{Left: lhs, Op: gojq.OpModify, Right: jqCall(fn, jqIdentity(), jqCall(jqRHSVar))}}
	default:
		upd = &gojq.Query{Left: lhs, Op: op, Right: rhs}
	}
	if checked {
		check := &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeReduce, Reduce: &gojq.Reduce{
			Query: &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeTry, Try: &gojq.Try{
				Body: jqCall("_dk_path", jqCall(jqLHS)),
			}}},
			Patterns: []*gojq.Pattern{{Name: jqPathVar}},
			Start:    jqIdentity(),
			Update:   jqCall("_dk_checkpath", jqCall(jqPathVar)),
		}}}
		upd = &gojq.Query{Left: check, Op: gojq.OpPipe, Right: upd}
	}
	replaceQuery(q, upd)
}

// staticPathOK reports whether every path of an assignment's left side is
// known at compile time to stay within the index limit: it is made of
// constant keys and indexes (none over the limit), slices with constant
// bounds, `.[]` and `..`, which index no further than the value reaches.
func (g *jqGuard) staticPathOK(q *gojq.Query) bool {
	if q == nil || len(q.FuncDefs) > 0 || len(q.Patterns) > 0 {
		return false
	}
	if q.Term == nil {
		return (q.Op == gojq.OpPipe || q.Op == gojq.OpComma) && g.staticPathOK(q.Left) && g.staticPathOK(q.Right)
	}
	t := q.Term
	switch t.Type {
	case gojq.TermTypeIdentity, gojq.TermTypeRecurse:
	case gojq.TermTypeIndex:
		if !g.staticIndexOK(t.Index) {
			return false
		}
	case gojq.TermTypeQuery:
		if !g.staticPathOK(t.Query) {
			return false
		}
	default:
		return false
	}
	for _, s := range t.SuffixList {
		if s.Index != nil && !g.staticIndexOK(s.Index) {
			return false
		}
	}
	return true
}

func (g *jqGuard) staticIndexOK(x *gojq.Index) bool {
	switch {
	case x.Name != "":
		return true
	case x.Str != nil:
		return x.Str.Queries == nil
	case x.IsSlice:
		return jqConstIndex(x.Start, math.MaxInt) && jqConstIndex(x.End, math.MaxInt)
	}
	return jqConstIndex(x.Start, g.maxIndex)
}

// jqConstIndex reports whether q is absent, a constant string or a
// constant number at most limit.
func jqConstIndex(q *gojq.Query, limit int) bool {
	if q == nil {
		return true
	}
	if len(q.FuncDefs) > 0 || q.Term == nil || len(q.Term.SuffixList) > 0 {
		return false
	}
	switch t := q.Term; t.Type {
	case gojq.TermTypeString:
		return t.Str.Queries == nil
	case gojq.TermTypeNumber:
		f, err := strconv.ParseFloat(t.Number, 64)
		return err == nil && f < float64(limit)+1
	case gojq.TermTypeUnary: // -1: negative indexes never grow an array
		u := t.Unary
		return u.Op == gojq.OpSub && u.Term.Type == gojq.TermTypeNumber && len(u.Term.SuffixList) == 0
	}
	return false
}

// replaceQuery makes q compute r; q keeps its own definitions, which r's
// parts may call.
func replaceQuery(q, r *gojq.Query) {
	q.FuncDefs = append(q.FuncDefs, r.FuncDefs...)
	q.Term, q.Left, q.Op, q.Right, q.Patterns = r.Term, r.Left, r.Op, r.Right, r.Patterns
}

func jqCall(name string, args ...*gojq.Query) *gojq.Query {
	return &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeFunc, Func: &gojq.Func{Name: name, Args: args}}}
}

func jqIdentity() *gojq.Query {
	return &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeIdentity}}
}

// The checked functions. Each estimates what it would build — string
// bytes, 16 bytes per array element, big-integer bytes — and fails over
// the limit before allocating.

// jqElemBytes is the estimated size of an array element (an interface).
const jqElemBytes = 16

// add is `+`: gojq's own for what the fast paths leave, which copy gojq's
// (including which operand an empty one returns).
func (g *jqGuard) add(_ any, xs []any) any {
	l, r := xs[0], xs[1]
	switch l := l.(type) {
	case nil:
		return r
	case string:
		if r, ok := r.(string); ok {
			if len(l)+len(r) > g.maxValue {
				return g.errValue
			}
			return l + r
		}
	case int:
		if r, ok := r.(int); ok {
			if v := l + r; (v >= l) == (r >= 0) {
				return v
			}
		}
	case float64:
		if r, ok := r.(float64); ok {
			return l + r
		}
	case []any:
		if r, ok := r.([]any); ok {
			if len(l)+len(r) > g.maxValue/jqElemBytes {
				return g.errValue
			}
			switch {
			case len(l) == 0:
				return r
			case len(r) == 0:
				return l
			}
			return append(append(make([]any, 0, len(l)+len(r)), l...), r...)
		}
	case map[string]any:
		if r, ok := r.(map[string]any); ok {
			switch {
			case len(l) == 0:
				return r
			case len(r) == 0:
				return l
			}
			m := make(map[string]any, len(l)+len(r))
			maps.Copy(m, l)
			maps.Copy(m, r)
			return m
		}
	}
	if r == nil {
		return l
	}
	if lb, rb := jqIntBits(l), jqIntBits(r); lb > 0 && rb > 0 && (max(lb, rb)+1+7)/8 > g.maxValue {
		return g.errValue
	}
	return runJQOp(g.addCode, l, r)
}

// mul is `*`, like add.
func (g *jqGuard) mul(_ any, xs []any) any {
	l, r := xs[0], xs[1]
	switch l := l.(type) {
	case int:
		if r, ok := r.(int); ok {
			if v := l * r; r != -1 && (r == 0 || v/r == l) {
				return v
			}
		}
	case float64:
		if r, ok := r.(float64); ok {
			return l * r
		}
	case map[string]any:
		if r, ok := r.(map[string]any); ok {
			return jqDeepMerge(l, r)
		}
	}
	var size float64
	if s, n, ok := jqRepeat(l, r); ok {
		size = float64(len(s)) * n
	} else if lb, rb := jqIntBits(l), jqIntBits(r); lb > 0 && rb > 0 {
		size = float64(lb+rb+7) / 8
	}
	if size > float64(g.maxValue) {
		return g.errValue
	}
	return runJQOp(g.mulCode, l, r)
}

// jqDeepMerge is gojq's object multiplication. Its result is at most as
// large as its operands: it needs no check.
func jqDeepMerge(l, r map[string]any) map[string]any {
	m := make(map[string]any, len(l)+len(r))
	maps.Copy(m, l)
	for k, v := range r {
		if mk, ok := m[k].(map[string]any); ok {
			if w, ok := v.(map[string]any); ok {
				v = jqDeepMerge(mk, w)
			}
		}
		m[k] = v
	}
	return m
}

// jqRepeat returns the string and the count of a string repetition (s * n
// or n * s) as gojq counts it: negative and NaN counts build nothing.
func jqRepeat(l, r any) (string, float64, bool) {
	s, ok := l.(string)
	if !ok {
		s, ok = r.(string)
		r = l
	}
	if !ok {
		return "", 0, false
	}
	var n float64
	switch x := r.(type) {
	case int:
		n = float64(x)
	case float64:
		n = x
	case *big.Int:
		n, _ = new(big.Float).SetInt(x).Float64()
	default:
		return "", 0, false
	}
	if !(n > 0) {
		return s, 0, true
	}
	return s, math.Floor(min(n, math.MaxInt32)), true
}

// jqIntBits is the bit length of an integer operand (0 for other values).
func jqIntBits(v any) int {
	switch x := v.(type) {
	case int:
		return 64
	case *big.Int:
		return max(x.BitLen(), 1)
	}
	return 0
}

// runJQOp computes an operator with gojq's own code: its results and
// errors stay gojq's.
func runJQOp(code *gojq.Code, l, r any) any {
	v, _ := code.Run([]any{l, r}).Next()
	return v
}

// checkPath fails for a path with an array index over the limit, or
// longer than a result may be deep (gojq recurses along it), else passes
// the input on.
func (g *jqGuard) checkPath(v any, xs []any) any {
	p, ok := xs[0].([]any)
	if !ok {
		return v // setpath reports it
	}
	if len(p) > g.maxDepth {
		return g.errPathDepth
	}
	for _, x := range p {
		switch x := x.(type) {
		case int:
			if x > g.maxIndex {
				return g.errIndex
			}
		case float64: // gojq truncates
			if x >= float64(g.maxIndex)+1 {
				return g.errIndex
			}
		case *big.Int:
			if x.Sign() > 0 {
				return g.errIndex
			}
		}
	}
	return v
}

// checkJoin bounds `join($sep)`: the elements' text and a separator
// between each two.
func (g *jqGuard) checkJoin(v any, xs []any) any {
	var n, size int
	each := func(e any) bool {
		n++
		switch e := e.(type) {
		case string:
			size += len(e)
		case *big.Int:
			size += e.BitLen()/3 + 2
		case int, float64, bool:
			size += 24 // the longest number as JSON
		}
		return size <= g.maxValue
	}
	if !jqEachValue(v, each) {
		return g.errValue
	}
	if sep, ok := xs[0].(string); ok && n > 1 && len(sep) > (g.maxValue-size)/(n-1) {
		return g.errValue
	}
	return v
}

// checkAdd bounds `add`: the strings' bytes or the arrays' elements it
// concatenates.
func (g *jqGuard) checkAdd(v any, _ []any) any {
	var size int
	ok := jqEachValue(v, func(e any) bool {
		switch e := e.(type) {
		case string:
			size += len(e)
		case []any:
			size += len(e) * jqElemBytes
		}
		return size <= g.maxValue
	})
	if !ok {
		return g.errValue
	}
	return v
}

// jqEachValue calls f with each element of an array or value of an object
// while f returns true, and reports whether it always did.
func jqEachValue(v any, f func(any) bool) bool {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if !f(e) {
				return false
			}
		}
	case map[string]any:
		for _, e := range v {
			if !f(e) {
				return false
			}
		}
	}
	return true
}

// match is gojq's _match (test, match and the functions built on them)
// for a pattern within the limit: compiling a long one is one long step.
func (g *jqGuard) match(v any, xs []any) any {
	if re, ok := xs[0].(string); ok && len(re) > g.maxRegex {
		return g.errRegex
	}
	return g.regex.match(v, xs[0], xs[1], xs[2])
}

// jqRegexPatterns bounds the patterns a kind keeps compiled.
const jqRegexPatterns = 256

// jqRegex runs gojq's _match in code of its own. gojq keeps every pattern a
// code compiles for as long as the code lives, so patterns taken from
// requests would grow a filter's code without end (about 2.5 KB each).
// After jqRegexPatterns distinct patterns, jqRegex starts over with fresh
// code, dropping the old one's patterns.
type jqRegex struct {
	query *gojq.Query // `_match($re; $flags; $test)`

	mu   sync.Mutex
	code *gojq.Code
	seen map[[2]string]struct{} // the patterns and flags code has compiled
}

func (r *jqRegex) match(v, re, flags, test any) any {
	var key [2]string // zero for arguments _match refuses
	if re, ok := re.(string); ok {
		switch f := flags.(type) {
		case nil:
			key = [2]string{re}
		case string:
			key = [2]string{re, f}
		}
	}
	r.mu.Lock()
	if _, ok := r.seen[key]; !ok {
		if r.code == nil || len(r.seen) == jqRegexPatterns {
			r.code = mustCompileJQ(r.query, gojq.WithVariables([]string{"$re", "$flags", "$test"}))
			r.seen = make(map[[2]string]struct{}, jqRegexPatterns)
		}
		r.seen[key] = struct{}{}
	}
	code := r.code
	r.mu.Unlock()
	w, _ := code.Run(v, re, flags, test).Next()
	return w
}
