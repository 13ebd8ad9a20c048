package nodes

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/itchyny/gojq"

	"github.com/datakit-gateway/datakit/engine"
)

// jqMaxFilterChars bounds a filter's text (spec §2.4); the evaluation
// limits are jqLimits (hardening §2.8).
const jqMaxFilterChars = 10240

var errJQMultipleResults = errors.New("jq filter produced more than one result")

// jqKind is the `jq` node type (spec §7.2). Filters are parsed, checked
// against the sandbox, rewritten by the guard and compiled at load; requests
// only run the compiled code. The kind's nodes share deps' limits and one
// concurrency semaphore.
func jqKind(deps Deps) engine.Kind {
	g := newJQGuard(deps)
	return engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
		d := &engine.Decl{
			IO:         engine.KeyInput | engine.KeyInputs | engine.KeyOutput,
			Input:      engine.TypeAny,
			UserInputs: true,
			Output:     engine.TypeAny,
		}
		if !a.Required("jq") {
			return d
		}
		src := a.String("jq", "", 1, jqMaxFilterChars)
		if src == "" {
			return d
		}
		q, err := gojq.Parse(src)
		if err != nil {
			a.Errorf("jq", "invalid filter: %s", err)
			return d
		}
		s := scanFilter(q)
		for _, name := range s.forbidden {
			a.Errorf("jq", "%q is not available", name)
		}
		if len(s.forbidden) > 0 {
			return d
		}
		g.guard(q)
		// Which $name variables exist depends on the connections, known only
		// at Build: bind every referenced one here so that the compiler
		// reports all other mistakes at the jq field.
		if _, err := gojq.Compile(q, g.compileOptions(s.vars)...); err != nil {
			a.Errorf("jq", "invalid filter: %s", err)
			return d
		}
		d.Build = func(b *engine.BuildInfo) (engine.Node, error) {
			n, err := buildJQ(q, b.InputFields, g)
			if err != nil {
				return nil, err // not a typed nil *jqNode
			}
			return n, nil
		}
		return d
	})
}

// buildJQ compiles q, guarded at Decode, for the node's actual inputs.
// gojq.Compile leaves q unchanged, so the query is reused.
func buildJQ(q *gojq.Query, fields []engine.Field, g *jqGuard) (*jqNode, error) {
	n := &jqNode{limits: g.jqLimits}
	var vars []string
	switch {
	case len(fields) == 0:
	case len(fields) == 1 && fields[0].Name == engine.SelfField:
		n.self = true
	default:
		n.fields = make([]string, len(fields))
		for i, f := range fields {
			n.fields[i] = f.Name
			if isJQVariable(f.Name) {
				vars = append(vars, "$"+f.Name)
				n.bound = append(n.bound, i)
			}
		}
		if len(n.bound) == len(n.fields) {
			n.bound, n.allBound = nil, true
		}
	}
	code, err := gojq.Compile(q, g.compileOptions(vars)...)
	if err != nil {
		// Reported like a Decode error: the engine prefixes the node.
		return nil, fmt.Errorf("jq: invalid filter: %w", err)
	}
	n.code = code
	return n, nil
}

// isJQVariable reports whether a user-defined input is also bound as $name:
// a jq identifier other than ENV, whose $ENV stays {}.
func isJQVariable(name string) bool {
	if name == "" || name == "ENV" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// jqNode is a compiled filter. It is immutable after Build and safe for
// concurrent use: *gojq.Code may be run from many goroutines.
type jqNode struct {
	code     *gojq.Code
	self     bool     // `.` is the node-wise input
	fields   []string // else the user-defined inputs, `.` being their object
	bound    []int    // indexes of the fields bound as $name, unless allBound
	allBound bool     // every field is a variable: pass the inputs as they are
	limits   *jqLimits
}

var _ engine.Node = (*jqNode)(nil)

func (n *jqNode) Run(ctx context.Context, _ *engine.Env, in []any) ([]any, error) {
	var input any
	var vars []any
	switch {
	case n.self:
		input = in[0]
	case len(n.fields) > 0:
		m := make(map[string]any, len(n.fields))
		for i, f := range n.fields {
			m[f] = in[i]
		}
		input = m
		if n.allBound {
			vars = in
		} else if len(n.bound) > 0 {
			vars = make([]any, len(n.bound))
			for j, i := range n.bound {
				vars[j] = in[i]
			}
		}
	}
	l := n.limits
	start := time.Now()
	if err := l.acquire(ctx, start); err != nil {
		return nil, err
	}
	defer l.release()
	v, err := n.eval(&evalCtx{Context: ctx, start: start, limit: l.timeout, expired: l.expired}, input, vars)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			if ctx.Err() != nil {
				return nil, ctx.Err() // the request ended, not the filter's time
			}
			return nil, l.errTimeout
		}
		return nil, err
	}
	return []any{v}, nil
}

// jqLimits are the limits shared by the jq nodes of one kind (one registry)
// and their errors. Immutable after newJQLimits; slots is the semaphore of
// datakit_jq_concurrency.
type jqLimits struct {
	timeout   time.Duration
	maxValue  int // bytes of a value built by +, *, join, add
	maxIndex  int // array index in an assignment path or setpath
	maxRegex  int // bytes of a regex pattern
	maxOutput int // estimated bytes of a result
	maxDepth  int // nesting of a result
	slots     chan struct{}
	expired   chan struct{} // closed: Done of a timed-out evalCtx

	// Errors raised inside gojq, which jqError prefixes with "jq: ".
	errValue, errIndex, errRegex, errPathDepth error
	// Errors of the node.
	errTimeout, errOutput, errDepth error
}

func newJQLimits(d Deps) *jqLimits {
	d = d.withDefaults()
	l := &jqLimits{
		timeout:   d.JQTimeout,
		maxValue:  clampInt(d.JQMaxValueBytes),
		maxIndex:  d.JQMaxArrayIndex,
		maxRegex:  clampInt(d.JQMaxRegexBytes),
		maxOutput: clampInt(d.JQMaxOutputBytes),
		maxDepth:  d.JQMaxOutputDepth,
		slots:     make(chan struct{}, d.JQConcurrency),
		expired:   make(chan struct{}),
	}
	close(l.expired)
	l.errTimeout = fmt.Errorf("jq filter exceeded time limit of %d ms", l.timeout.Milliseconds())
	l.errValue = valueLimitError(l.maxValue)
	l.errIndex = fmt.Errorf("array index exceeds limit of %d", l.maxIndex)
	l.errRegex = valueLimitError(l.maxRegex)
	l.errPathDepth = fmt.Errorf("result exceeds depth limit of %d", l.maxDepth)
	l.errOutput = fmt.Errorf("jq: %w", valueLimitError(l.maxOutput))
	l.errDepth = fmt.Errorf("jq: %w", l.errPathDepth)
	return l
}

func valueLimitError(n int) error { return fmt.Errorf("value exceeds limit of %d bytes", n) }

// clampInt converts a byte count of the settings to int.
func clampInt(n int64) int { return int(min(n, math.MaxInt)) }

// acquire takes one of the kind's evaluation slots (datakit_jq_concurrency),
// waiting at most until the evaluation's deadline: the wait is part of it.
func (l *jqLimits) acquire(ctx context.Context, start time.Time) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(l.timeout - time.Since(start))
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return l.errTimeout
	}
}

func (l *jqLimits) release() { <-l.slots }

// evalCtx bounds one evaluation without a timer. gojq asks Done before every
// opcode, so Done itself reads the clock every evalClockEvery calls: a timer
// context (context.WithTimeout) costs about 550 ns and 5 allocations per
// evaluation, as much as a small filter. Either way a single long builtin
// runs to its end first (hardening §2.8). Only the evaluating goroutine uses
// it, hence the plain counter; the request's cancellation passes through.
type evalCtx struct {
	context.Context               // the request's
	start           time.Time     // of the evaluation
	limit           time.Duration // datakit_jq_timeout
	expired         chan struct{} // closed
	calls           uint32
	timedOut        bool
}

// evalClockEvery is how many opcodes pass between clock reads (a few µs).
const evalClockEvery = 256

func (c *evalCtx) Done() <-chan struct{} {
	if !c.timedOut {
		if c.calls++; c.calls%evalClockEvery != 0 || time.Since(c.start) <= c.limit {
			return c.Context.Done()
		}
		c.timedOut = true
	}
	return c.expired
}

func (c *evalCtx) Err() error {
	if c.timedOut {
		return context.DeadlineExceeded
	}
	return c.Context.Err()
}

func (c *evalCtx) Deadline() (time.Time, bool) {
	d := c.start.Add(c.limit)
	if pd, ok := c.Context.Deadline(); ok && pd.Before(d) {
		return pd, true
	}
	return d, true
}

// eval pulls at most two results: a filter must yield one value (or none).
func (n *jqNode) eval(ctx context.Context, input any, vars []any) (any, error) {
	iter := n.code.RunWithContext(ctx, input, vars...)
	v, ok := iter.Next()
	if !ok {
		return nil, nil
	}
	if err, isErr := v.(error); isErr {
		return nil, n.limits.jqError(err)
	}
	if w, more := iter.Next(); more {
		if err, isErr := w.(error); isErr {
			return nil, n.limits.jqError(err)
		}
		return nil, errJQMultipleResults
	}
	return n.limits.checkResult(v)
}

// jqError words a runtime error of gojq; context errors pass unchanged for
// Run to classify.
func (l *jqLimits) jqError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	var ve gojq.ValueError // error(v), halt, halt_error
	if !errors.As(err, &ve) {
		return fmt.Errorf("jq: %s", err) // gojq's own messages preview values in 30 bytes
	}
	// gojq would encode the value recursively: bound it first.
	v, cerr := l.checkResult(ve.Value())
	if cerr != nil {
		return cerr
	}
	var h *gojq.HaltError
	if !errors.As(err, &h) {
		return fmt.Errorf("jq: error: %s", valueMessage(v))
	}
	if v == nil && h.ExitCode() == 0 {
		return errors.New("jq: filter halted: halt") // plain `halt` has no message
	}
	if s, ok := v.(string); ok {
		// halt_error messages are usually written with a newline for a tty.
		v = strings.TrimSuffix(s, "\n")
	}
	return fmt.Errorf("jq: filter halted: %s", valueMessage(v))
}

// valueMessage is an error value as jq prints it: a string as it is, any
// other value as JSON.
func valueMessage(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := engine.EncodeJSON(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// jqFrame is a container waiting to be walked and its nesting level (1 for
// the result itself).
type jqFrame struct {
	v     any
	depth int
}

// checkResult bounds a result's nesting and estimated size before anything
// recursive (encoding, tracing) touches it, and converts the few gojq values
// that are no runtime values. The walk is iterative so that a hostile depth
// cannot exhaust the stack.
func (l *jqLimits) checkResult(v any) (any, error) {
	size, fix, container := scalarCost(v)
	if size > l.maxOutput {
		return nil, l.errOutput
	}
	if !container {
		if fix {
			return normalizeJQ(v), nil
		}
		return v, nil
	}
	var buf [32]jqFrame
	stack := append(buf[:0], jqFrame{v, 1})
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if f.depth > l.maxDepth {
			return nil, l.errDepth
		}
		switch x := f.v.(type) {
		case []any:
			for _, e := range x {
				s, ef, ec := scalarCost(e)
				size, fix = size+s, fix || ef
				if ec {
					stack = append(stack, jqFrame{e, f.depth + 1})
				}
			}
		case map[string]any:
			for k, e := range x {
				s, ef, ec := scalarCost(e)
				size, fix = size+len(k)+s, fix || ef
				if ec {
					stack = append(stack, jqFrame{e, f.depth + 1})
				}
			}
		}
		if size > l.maxOutput {
			return nil, l.errOutput
		}
	}
	if fix {
		return normalizeJQ(v), nil
	}
	return v, nil
}

// scalarCost estimates a value's own size (16 bytes a value, like an
// interface slot, plus string bytes), reports whether normalizeJQ must
// convert it and whether it is a container to walk.
func scalarCost(v any) (size int, fix, container bool) {
	switch x := v.(type) {
	case string:
		return 16 + len(x), false, false
	case float64:
		return 16, math.IsNaN(x) || math.IsInf(x, 0), false
	case *big.Int:
		return 16 + len(x.Bits())*8, true, false
	case []any, map[string]any:
		return 16, false, true
	}
	return 16, false, false
}

// normalizeJQ converts gojq numbers that are no runtime values, as jq prints
// them: big integers to float64 (an int when they fit), NaN to null and the
// infinities to the largest finite doubles. Containers are copied, never
// changed: gojq may return constants shared by every run of the code. Only
// called after checkResult bounded the depth.
func normalizeJQ(v any) any {
	switch x := v.(type) {
	case *big.Int:
		if x.IsInt64() {
			return int(x.Int64())
		}
		f, _ := new(big.Float).SetInt(x).Float64()
		return normalizeJQ(f)
	case float64:
		switch {
		case math.IsNaN(x):
			return nil
		case math.IsInf(x, 1):
			return math.MaxFloat64
		case math.IsInf(x, -1):
			return -math.MaxFloat64
		}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeJQ(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeJQ(e)
		}
		return out
	}
	return v
}

// jqUnavailable are the builtins a filter may not call (spec §7.2): they
// read further inputs, write to the process's stderr or load modules.
// Every name starting with `_` (gojq's internals) is refused as well.
func jqUnavailable(name string) bool {
	switch name {
	case "input", "inputs", "debug", "stderr", "input_filename", "import", "include", "modulemeta":
		return true
	}
	return strings.HasPrefix(name, "_")
}

// filterScan is what scanFilter collects, in order of first appearance:
// the unavailable functions a filter calls and the $variables it
// references that an input could bind.
type filterScan struct {
	forbidden []string
	vars      []string
	seen      map[string]bool
}

func scanFilter(q *gojq.Query) *filterScan {
	s := &filterScan{}
	for _, im := range q.Imports { // only a program's top level imports
		if im.ImportPath != "" {
			s.name("import")
		} else {
			s.name("include")
		}
	}
	jqWalk(q, func(t *gojq.Term) {
		if t.Func != nil {
			s.name(t.Func.Name)
		}
		if t.Object != nil {
			for _, kv := range t.Object.KeyVals {
				if strings.HasPrefix(kv.Key, "$") { // {$x}
					s.name(kv.Key)
				}
			}
		}
	}, nil)
	return s
}

func (s *filterScan) add(list *[]string, name string) {
	if s.seen[name] {
		return
	}
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.seen[name] = true
	*list = append(*list, name)
}

// name records a function call or variable reference. Names given by the
// user are refused even if the filter defines them itself.
func (s *filterScan) name(name string) {
	switch {
	case strings.HasPrefix(name, "$"):
		if isJQVariable(name[1:]) {
			s.add(&s.vars, name)
		}
	case jqUnavailable(name):
		s.add(&s.forbidden, name)
	}
}

// jqWalk visits every query and term of a parsed filter, definitions and
// patterns included: term before the term's parts, query after the query's
// parts, so that a rewrite of a query finds its parts rewritten and never
// visits what it builds. Either function may be nil.
func jqWalk(q *gojq.Query, term func(*gojq.Term), query func(*gojq.Query)) {
	w := jqWalker{term, query}
	w.query(q)
}

type jqWalker struct {
	onTerm  func(*gojq.Term)
	onQuery func(*gojq.Query)
}

func (w jqWalker) query(q *gojq.Query) {
	if q == nil {
		return
	}
	for _, fd := range q.FuncDefs {
		w.query(fd.Body)
	}
	w.term(q.Term)
	w.query(q.Left)
	w.query(q.Right)
	w.patterns(q.Patterns)
	if w.onQuery != nil {
		w.onQuery(q)
	}
}

func (w jqWalker) term(t *gojq.Term) {
	if t == nil {
		return
	}
	if w.onTerm != nil {
		w.onTerm(t)
	}
	w.index(t.Index)
	if t.Func != nil {
		w.queries(t.Func.Args)
	}
	if t.Object != nil {
		for _, kv := range t.Object.KeyVals {
			w.str(kv.KeyString)
			w.query(kv.KeyQuery)
			w.query(kv.Val)
		}
	}
	if t.Array != nil {
		w.query(t.Array.Query)
	}
	if t.Unary != nil {
		w.term(t.Unary.Term)
	}
	w.str(t.Str)
	if t.If != nil {
		w.query(t.If.Cond)
		w.query(t.If.Then)
		for _, e := range t.If.Elif {
			w.query(e.Cond)
			w.query(e.Then)
		}
		w.query(t.If.Else)
	}
	if t.Try != nil {
		w.query(t.Try.Body)
		w.query(t.Try.Catch)
	}
	if r := t.Reduce; r != nil {
		w.query(r.Query)
		w.patterns(r.Patterns)
		w.query(r.Start)
		w.query(r.Update)
	}
	if f := t.Foreach; f != nil {
		w.query(f.Query)
		w.patterns(f.Patterns)
		w.query(f.Start)
		w.query(f.Update)
		w.query(f.Extract)
	}
	if t.Label != nil {
		w.query(t.Label.Body)
	}
	w.query(t.Query)
	for _, x := range t.SuffixList {
		w.index(x.Index)
	}
}

func (w jqWalker) queries(qs []*gojq.Query) {
	for _, q := range qs {
		w.query(q)
	}
}

func (w jqWalker) index(x *gojq.Index) {
	if x == nil {
		return
	}
	w.str(x.Str)
	w.query(x.Start)
	w.query(x.End)
}

func (w jqWalker) str(x *gojq.String) {
	if x != nil {
		w.queries(x.Queries)
	}
}

// patterns visits the expressions inside destructuring patterns
// (`. as {(f): $v}`); the variables they bind need no input.
func (w jqWalker) patterns(ps []*gojq.Pattern) {
	for _, p := range ps {
		w.pattern(p)
	}
}

func (w jqWalker) pattern(p *gojq.Pattern) {
	if p == nil {
		return
	}
	w.patterns(p.Array)
	for _, o := range p.Object {
		w.str(o.KeyString)
		w.query(o.KeyQuery)
		w.pattern(o.Val)
	}
}
