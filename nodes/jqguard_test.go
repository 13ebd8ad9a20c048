package nodes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/itchyny/gojq"

	"github.com/datakit-gateway/datakit/engine"
)

// guardedAndPlain compiles a filter twice: with the guard (rewrite, prelude,
// checked functions) and as gojq would without it. It reports false for a
// filter the node refuses.
func guardedAndPlain(tb testing.TB, g *jqGuard, src string) (guarded, plain *gojq.Code, ok bool) {
	tb.Helper()
	q, err := gojq.Parse(src)
	if err != nil || len(scanFilter(q).forbidden) > 0 {
		return nil, nil, false
	}
	if plain, err = gojq.Compile(q); err != nil {
		return nil, nil, false
	}
	q, _ = gojq.Parse(src) // the guard rewrites in place
	g.guard(q)
	if guarded, err = gojq.Compile(q, g.compileOptions(nil)...); err != nil {
		tb.Fatalf("Compile(guarded %q) = %v, plain compiles", src, err)
	}
	return guarded, plain, true
}

// jqOutputs runs code and renders up to max results and the error that
// ended them. timedOut reports a run stopped by ctx.
func jqOutputs(ctx context.Context, code *gojq.Code, input any, max int) (out []string, timedOut bool) {
	iter := code.RunWithContext(ctx, input)
	for range max {
		v, ok := iter.Next()
		if !ok {
			break
		}
		if err, isErr := v.(error); isErr {
			if ctx.Err() != nil {
				return out, true
			}
			return append(out, "error: "+err.Error()), false
		}
		out = append(out, fmt.Sprintf("%#v", normalizeJQ(v)))
	}
	return out, false
}

// isGuardError reports an error only the guard raises.
func isGuardError(s string) bool {
	return strings.Contains(s, "value exceeds limit of") || strings.Contains(s, "array index exceeds limit of")
}

// ordinaryJQ are programs of the kind graphs run, with an input: the guard
// must not change what they give. The fuzz seed corpus holds the same.
var ordinaryJQ = []struct{ src, input string }{
	// Headers, URLs, bodies (spec §13).
	{`.headers * {"X-Api-Key": (.query.api_key // "none")}`, `{"headers":{"Accept":"*/*"},"query":{"api_key":"K"}}`},
	{`.headers * {"X-Api-Key": (.query.api_key // "none")}`, `{"headers":{"Accept":"*/*"},"query":{}}`},
	{`{Authorization: (.token_type + " " + .access_token)}`, `{"token_type":"Bearer","access_token":"abc"}`},
	{`"http://127.0.0.1:9001/" + .["X-Tenant"] + "/auth-token"`, `{"X-Tenant":"t1"}`},
	{`"http://127.0.0.1:9001/" + .["X-Tenant"] + "/auth-token"`, `{}`},
	{`{author: .a.slideshow.author, uuid: .b.uuid}`, `{"a":{"slideshow":{"author":"Yours Truly"}},"b":{"uuid":"0b7e2a40"}}`},
	{`{"caller-a": "upstream-a"}[.username] // "upstream-default"`, `{"username":"caller-a"}`},
	{`.headers + {"X-Request-Id": .id}`, `{"headers":{"A":"1"},"id":"r1"}`},
	{`{a: 1} + {b: 2} + null + {a: 3}`, `null`},
	{`{a: {b: 1, c: [1]}} * {a: {c: 2, d: {e: 3}}}`, `null`},
	{`.[0] * .[1] * .[2]`, `[{"a":{"x":1}},{"a":{"y":2}},{"b":null}]`},
	{`"Bearer \(.token)"`, `{"token":"t0k"}`},
	{`"\(.a)-\(.b)-\(.c)"`, `{"a":1,"b":"x","c":[1,{"d":null}]}`},
	// Arithmetic: ints, floats, overflow to big integers, mixed.
	{`.a + .b, .a * .b, .a - .b, .a / .b, .a % .b`, `{"a":7,"b":3}`},
	{`.a + .b, .a * .b`, `{"a":1.5,"b":-2.25}`},
	{`.a + .b, .a * .b`, `{"a":3,"b":0.5}`},
	{`9223372036854775807 + 1, 9223372036854775807 * 2, -9223372036854775808 * -1`, `null`},
	{`(9223372036854775807 + 1) * (9223372036854775807 + 1) + 1`, `null`},
	{`reduce range(40) as $i (1; . * 3)`, `null`},
	{`reduce range(30) as $i (1; . + . * 2)`, `null`},
	{`100000000000000000000 * 1.5, 100000000000000000000 + 0.5, 2 * 100000000000000000000`, `null`},
	{`[.[] | . * 2 + 1]`, `[1,2.5,-3,1e300]`},
	{`1e308 * 10, -1e308 * 10, nan * 2 | isinfinite`, `null`},
	{`[1, null, "x", [1], {a: 1}] | map(. + null, null + .)`, `null`},
	// Strings: concatenation and repetition.
	{`"ab" * 3, 3 * "ab", "ab" * 0, "ab" * -1, "ab" * 2.7, "ab" * 0.5`, `null`},
	{`"x" * nan, "" * 5, "é" * 4`, `null`},
	{`reduce range(10) as $i (""; . + ($i | tostring))`, `null`},
	{`.a + .b`, `{"a":"héllo ","b":"wörld"}`},
	// Arrays.
	{`[1, 2] + [3], [] + [1], [1] + [], null + [1]`, `null`},
	{`reduce .[] as $x ([]; . + [$x * 2])`, `[1,2,3]`},
	{`[.[] | select(. > 1)] + [0]`, `[1,2,3]`},
	{`add, add(.[] | . * 2), ([] | add), ({a: "x", b: "y"} | add)`, `[1,2,3]`},
	{`add`, `["a","b","c"]`},
	{`add`, `[[1],[2,3],null,[]]`},
	{`add`, `[{"a":1},{"b":2},{"a":3}]`},
	// Assignments.
	{`.a = 1 | .b.c = 2 | .d[1] = 3`, `{}`},
	{`.a |= . + 1 | .b += 2 | .c -= 3 | .d *= 4 | .e /= 5 | .f %= 4 | .g //= "x"`, `{"a":1,"b":1,"c":1,"d":1,"e":10,"f":10,"g":null}`},
	{`.[] += 1`, `[1,2,3]`},
	{`.[] |= . * 2`, `{"a":1,"b":2}`},
	{`.items[.i] = "x"`, `{"items":[1,2,3],"i":1}`},
	{`.items[.i] |= empty`, `{"items":[1,2,3],"i":1}`},
	{`.[.k] = 1, .[.k] += "s"`, `{"k":"name","name":"n"}`},
	{`(.a, .b) = 9`, `{"a":1}`},
	{`(.a | .b) |= 5`, `{"a":{"b":1}}`},
	{`.a[1:3] = ["x"], .a[1:] |= map(. * 10)`, `{"a":[1,2,3,4]}`},
	{`.. |= (if type == "number" then . + 1 else . end)`, `{"a":[1,{"b":2}]}`},
	{`to_entries | map(.value += 1) | from_entries`, `{"a":1,"b":2}`},
	{`with_entries(.key |= ascii_upcase)`, `{"a":1}`},
	{`.a += (.b += 1 | .b)`, `{"a":1,"b":2}`},
	{`.[(.k += "x" | .k)] = 1`, `{"k":"a"}`},
	{`def inc(f): f += 1; inc(.a) | inc(.b[0])`, `{"a":1,"b":[1]}`},
	{`1 | .a = 2`, `null`},
	{`.a += error("x")`, `1`},
	{`setpath(["a", 0]; 1), getpath(["a"]), delpaths([["a"]])`, `{"a":[5]}`},
	{`[setpath(["a"], ["b"]; 1, 2)]`, `{}`},
	{`[paths], [paths(type == "number")], pick(.a.b), pick(.c[1])`, `{"a":{"b":1,"x":2},"c":[1,2,3]}`},
	{`fromstream(tostream)`, `{"a":[1,{"b":null}],"c":"x"}`},
	{`[.[] | tostream] | fromstream(.[])`, `[[1,2],{"a":3}]`},
	{`del(.a[0]) | to_entries`, `{"a":[1,2]}`},
	// Regex, join, split.
	{`test("a.c"), test("A"; "i"), test(["B", "ix"])`, `"abc"`},
	{`[match("(?<x>a)(b)?"; "g")], capture("(?<n>[0-9]+)")`, `"a1ab22"`},
	{`[scan("[a-z]+")], [scan("(a)(b)")], [splits(", *")], split(", *"; null)`, `"ab, cd,ef"`},
	{`sub("(?<x>[a-z])"; "<\(.x)>"), gsub("[aeiou]"; "_"), gsub("(?<c>.)"; "\(.c)\(.c)"; "g")`, `"hello"`},
	{`[.[] | ascii_downcase] | join(", ")`, `["A","B","C"]`},
	{`join("-"), join(""), ([] | join("x")), ([1, null, true, "s"] | join("/"))`, `["a","b"]`},
	{`join(1)`, `["a","b"]`},
	{`.a / ", " | join(";")`, `{"a":"x, y, z"}`},
	{`ltrimstr("a") + rtrimstr("c")`, `"abc"`},
	// Errors stay gojq's.
	{`{} + 1`, `null`},
	{`[] * 2`, `null`},
	{`"a" * {}`, `null`},
	{`setpath("a"; 1)`, `null`},
	{`[1] | .a = 1`, `null`},
	{`join(",")`, `[{"a":1}]`},
	{`test(1)`, `"a"`},
	{`test("a"; [1]), test("a"; {})`, `"a"`},
	{`test("a"; "q")`, `"a"`},
	{`test("(")`, `"a"`},
	{`try ({} + 1) catch ., try ("x" * {}) catch .`, `null`},
	{`label $out | .[] | if . > 1 then ., break $out else . end`, `[1,2,3]`},
}

func TestJQGuardMatchesPlain(t *testing.T) {
	g := newJQGuard(Deps{})
	for _, tt := range ordinaryJQ {
		t.Run(tt.src, func(t *testing.T) {
			guarded, plain, ok := guardedAndPlain(t, g, tt.src)
			if !ok {
				t.Fatalf("filter %q does not compile or is refused", tt.src)
			}
			in, err := engine.DecodeJSON([]byte(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			want, _ := jqOutputs(ctx, plain, in, 100)
			got, _ := jqOutputs(ctx, guarded, in, 100)
			if !slices.Equal(got, want) {
				t.Errorf("guarded %q on %s = %q, plain gives %q", tt.src, tt.input, got, want)
			}
		})
	}
}

// FuzzJQGuard: guarded and plain programs agree when no limit hits
// (hardening T22). Runs are bounded by a deadline; programs the node
// refuses are skipped.
func FuzzJQGuard(f *testing.F) {
	for _, tt := range ordinaryJQ {
		f.Add(tt.src, tt.input)
	}
	g := newJQGuard(Deps{})
	f.Fuzz(func(t *testing.T, src, input string) {
		if len(src) > jqMaxFilterChars {
			return
		}
		in, err := engine.DecodeJSON([]byte(input))
		if err != nil {
			in = input // a string input
		}
		guarded, plain, ok := guardedAndPlain(t, g, src)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		got, timedOut := jqOutputs(ctx, guarded, in, 20)
		if timedOut || slices.ContainsFunc(got, isGuardError) {
			return // the plain run could exhaust memory
		}
		ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		want, timedOut := jqOutputs(ctx, plain, in, 20)
		if timedOut {
			return
		}
		if !slices.Equal(got, want) {
			t.Errorf("guarded %q on %s = %q, plain gives %q", src, input, got, want)
		}
	})
}

// TestT22JQMemoryBlowUp: request data sizes the values a filter builds
// (hardening T22). Each program runs 20 times at once with n = 1e9 (or the n
// given) and must fail with the error of its limit; the guarded operations
// at their check, before allocating: heapPerRun bounds the allocation of
// one run, where an unguarded run allocates a gigabyte and more. The spec's
// "within 5 ms" is asserted on a run of its own as guardedRunMax, a margin
// for a shared, loaded machine (concurrent runs wait for a jq slot); the
// test logs what it saw. The time limit is long so that a timeout shows a
// missing guard.
func TestT22JQMemoryBlowUp(t *testing.T) {
	const (
		runs          = 20
		heapPerRun    = 64 << 20
		guardedRunMax = 500 * time.Millisecond
	)
	re := strings.Repeat("a", 1<<20)
	tests := []struct {
		name, src string
		n         int
		guarded   bool          // a check before allocating stops it
		timeout   time.Duration // zero: a minute
		want      string
	}{
		{"string repeat", `"x" * .n`, 1e9, true, 0, "jq: value exceeds limit of 8388608 bytes"},
		{"repeat reversed", `.n * "xy"`, 1e9, true, 0, "jq: value exceeds limit of 8388608 bytes"},
		{"doubling concat", `reduce range(.n) as $i ("a"; . + .)`, 1e9, true, 0, "jq: value exceeds limit of 8388608 bytes"},
		{"doubling array", `reduce range(.n) as $i ([1]; . + .)`, 1e9, true, 0, "jq: value exceeds limit of 8388608 bytes"},
		{"update index", `.b[.n] |= 5`, 1e9, true, 0, "jq: array index exceeds limit of 524288"},
		{"assign index", `null | .[$__n] = 1`, 1e8, true, 0, "jq: array index exceeds limit of 524288"},
		{"add-assign index", `.b[.n] += 1`, 1e9, true, 0, "jq: array index exceeds limit of 524288"},
		{"setpath", `setpath(["b", .n]; 1)`, 1e9, true, 0, "jq: array index exceeds limit of 524288"},
		{"pick", `.n as $n | null | pick(.[$n])`, 1e9, true, 0, "jq: array index exceeds limit of 524288"},
		{"fromstream", `fromstream([[.n], 1], [[.n]])`, 1e9, true, 0, "jq: array index exceeds limit of 524288"},
		{"join", `.n as $n | [range(1000)] | join("x" * ($n / 1000))`, 1e9, true, 0, "jq: value exceeds limit of 8388608 bytes"},
		{"add", `("x" * 1000000) as $s | [range(.n / 1000000) | $s] | add`, 1e9, true, 0, "jq: value exceeds limit of 8388608 bytes"},
		{"regex", `.re as $re | "abc" | test($re)`, 1e9, true, 0, "jq: value exceeds limit of 4096 bytes"},
		{"regex in gsub", `.re as $re | "abc" | gsub($re; "")`, 1e9, true, 0, "jq: value exceeds limit of 4096 bytes"},
		// Bounded by the result checks and the time limit only.
		{"depth", `reduce range(.n) as $i (null; [.])`, 1e5, false, 0, "jq: result exceeds depth limit of 10000"},
		{"depth, huge n", `reduce range(.n) as $i (null; [.])`, 1e9, false, 100 * time.Millisecond, "jq filter exceeded time limit of 100 ms"},
		{"long path", `setpath([range(.n) | 0]; 1)`, 1e5, false, 0, "jq: result exceeds depth limit of 10000"},
		{"collection", `[range(.n)]`, 1e9, false, 100 * time.Millisecond, "jq filter exceeded time limit of 100 ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := cmp.Or(tt.timeout, time.Minute)
			src := strings.ReplaceAll(tt.src, "$__n", strconv.Itoa(tt.n)) // a constant path
			n := mustBuild(t, jqKind(Deps{JQTimeout: timeout}), map[string]any{"jq": src}, selfInput, true)
			in := []any{map[string]any{"n": tt.n, "re": re, "b": []any{}}}
			run := func() {
				_, err := n.Run(context.Background(), testEnv(nil), in)
				if errText(err) != tt.want {
					t.Errorf("Run(%q) = %v, want %q", src, err, tt.want)
				}
			}

			start := time.Now()
			run()
			alone := time.Since(start)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start = time.Now()
			var wg sync.WaitGroup
			for range runs {
				wg.Go(run)
			}
			wg.Wait()
			runtime.ReadMemStats(&after)
			perRun := (after.TotalAlloc - before.TotalAlloc) / runs
			t.Logf("alone %v; %d at once: %v, %d KiB allocated per run", alone, runs, time.Since(start), perRun>>10)
			if !tt.guarded {
				return
			}
			if perRun > heapPerRun {
				t.Errorf("Run(%q) allocated %d bytes per run, want at most %d", src, perRun, heapPerRun)
			}
			if alone > guardedRunMax {
				t.Errorf("Run(%q) took %v, want under %v", src, alone, guardedRunMax)
			}
		})
	}
	t.Run("internal functions refused at load", func(t *testing.T) {
		_, errs := decodeForTest(jqKind(Deps{}), map[string]any{"jq": `_multiply("a"; .n)`})
		if got, want := errStrings(errs), []string{`jq: "_multiply" is not available`}; !slices.Equal(got, want) {
			t.Errorf("Decode(_multiply) = %q, want %q", got, want)
		}
	})
}

// TestJQGuardLimits: each limit holds at its boundary and follows Deps.
func TestJQGuardLimits(t *testing.T) {
	deps := Deps{JQMaxValueBytes: 100, JQMaxArrayIndex: 10, JQMaxRegexBytes: 5, JQMaxOutputBytes: 1000, JQMaxOutputDepth: 5}
	tests := []struct {
		src, want, wantErr string
	}{
		{`"x" * 100 | length`, `100`, ""},
		{`"x" * 101`, ``, "jq: value exceeds limit of 100 bytes"},
		{`"x" * 100.9 | length`, `100`, ""},
		{`("x" * 60) + ("y" * 40) | length`, `100`, ""},
		{`("x" * 60) + ("y" * 41)`, ``, "jq: value exceeds limit of 100 bytes"},
		{`[range(5)] + [range(1)] | length`, `6`, ""}, // 16 bytes an element: 6 fit
		{`[range(5)] + [range(1)] + [1]`, ``, "jq: value exceeds limit of 100 bytes"},
		{`.s += "x"`, ``, "jq: value exceeds limit of 100 bytes"},
		{`.s *= 2`, ``, "jq: value exceeds limit of 100 bytes"},
		{`"\(.s)\(.s)" | length`, `200`, ""}, // interpolation: bounded by the time limit only
		{`reduce range(12) as $i (3; . * .)`, ``, "jq: value exceeds limit of 100 bytes"},
		{`reduce range(1000) as $i (9223372036854775807; . + .)`, ``, "jq: value exceeds limit of 100 bytes"},
		{`[.s] | join("-") | length`, `100`, ""},
		{`[.s, "x"] | join("")`, ``, "jq: value exceeds limit of 100 bytes"},
		{`[range(10) | "12345"] | join("xxxxx") | length`, `95`, ""},
		{`[range(10) | "12345"] | join("xxxxxx")`, ``, "jq: value exceeds limit of 100 bytes"},
		{`[range(4) | 1] | join("") | length`, `4`, ""}, // numbers count 24 bytes
		{`[range(5) | 1] | join("")`, ``, "jq: value exceeds limit of 100 bytes"},
		{`[.s, "x"] | add`, ``, "jq: value exceeds limit of 100 bytes"},
		{`[.s] | add(.[], null) | length`, `100`, ""},
		{`add(.s, "x")`, ``, "jq: value exceeds limit of 100 bytes"},
		{`[[range(5)], [1]] | add | length`, `6`, ""},
		{`[[range(5)], [1, 2]] | add`, ``, "jq: value exceeds limit of 100 bytes"},
		{`.a[10] = 1 | .a | length`, `11`, ""},
		{`.a[11] = 1`, ``, "jq: array index exceeds limit of 10"},
		{`11 as $i | .a[$i] = 1`, ``, "jq: array index exceeds limit of 10"},
		{`10.5 as $i | .a[$i] |= 1 | .a | length`, `11`, ""},
		{`11.0 as $i | .a[$i] |= 1`, ``, "jq: array index exceeds limit of 10"},
		{`[1, 2] | .[-1] = 5`, `[1,5]`, ""},
		{`def path(f): empty; .a[11] = 1`, ``, "jq: array index exceeds limit of 10"},
		{`def path(f): empty; 11 as $i | .a[$i] |= 1`, ``, "jq: array index exceeds limit of 10"},
		{`setpath([11]; 1)`, ``, "jq: array index exceeds limit of 10"},
		{`try setpath([11]; 1) catch .`, `"array index exceeds limit of 10"`, ""},
		{`setpath([range(5) | "k"]; 1) | getpath([range(5) | "k"])`, `1`, ""},
		{`setpath([range(6) | "k"]; 1)`, ``, "jq: result exceeds depth limit of 5"},
		{`null | pick(.[11])`, ``, "jq: array index exceeds limit of 10"},
		{`fromstream([[11], 1], [[11]])`, ``, "jq: array index exceeds limit of 10"},
		{`[.[] | 1]`, `[1,1]`, ""},
		// Each regex builtin is the checked one.
		{`.s | test("abcde")`, `false`, ""},
		{`.s | test("abcdef")`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | test("abcdef"; "x")`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | test(["abcdef", "x"])`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | match("abcdef")`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | [match("abcdef"; "g")]`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | capture("abcdef")`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | capture("abcdef"; "g")`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | [scan("abcdef")]`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | [scan("abcdef"; "g")]`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | [splits("abcdef")]`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | [splits("abcdef"; "g")]`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | split("abcdef"; null)`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | split("abcdef") | length`, `1`, ""}, // split/1 takes no regex
		{`.s | sub("abcdef"; "")`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | sub("abcdef"; ""; "g")`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | gsub("abcdef"; "")`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | gsub("abcdef"; ""; "x")`, ``, "jq: value exceeds limit of 5 bytes"},
		{`.s | gsub("x"; "yy")`, ``, "jq: value exceeds limit of 100 bytes"}, // sub's own + is checked
		{`[[[[[1]]]]] | length`, `1`, ""},
		{`[[[[[[1]]]]]]`, ``, "jq: result exceeds depth limit of 5"},
		{`[.s, .s, .s, .s, .s, .s, .s, .s, .s]`, ``, "jq: value exceeds limit of 1000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			d := deps
			d.JQTimeout = time.Minute
			n := mustBuild(t, jqKind(d), map[string]any{"jq": tt.src}, selfInput, true)
			got, err := n.Run(context.Background(), testEnv(nil), []any{map[string]any{"a": nil, "s": strings.Repeat("x", 100)}})
			if errText(err) != tt.wantErr {
				t.Fatalf("Run(%q) error = %v, want %q", tt.src, err, tt.wantErr)
			}
			if err == nil && jsonText(got[0]) != tt.want {
				t.Errorf("Run(%q) = %s, want %s", tt.src, jsonText(got[0]), tt.want)
			}
		})
	}
}

// TestJQGuardRewrite: paths known at compile time need no check; others
// get one, and an assignment inside an assignment's path is not repeated.
func TestJQGuardRewrite(t *testing.T) {
	g := newJQGuard(Deps{})
	for _, tt := range []struct {
		src     string
		checked bool
	}{
		{`.a = 1`, false},
		{`.a.b["c"][0][-1][2:3] |= 1`, false},
		{`.[] += 1`, false},
		{`.. |= 1`, false},
		{`(.a, .b | .c) = 1`, false},
		{`.[524288] = 1`, false},
		{`.[524289] = 1`, true},
		{`.[.i] = 1`, true},
		{`.[$i] = 1`, true},
		{`.a[1:.n] = 1`, true},
		{`first(.a) = 1`, true},
		{`getpath(["a"]) = 1`, true},
		{`.["\(.k)"] = 1`, true},
	} {
		q, err := gojq.Parse(tt.src)
		if err != nil {
			t.Fatal(err)
		}
		g.rewrite(q)
		if got := strings.Contains(q.String(), "_dk_checkpath"); got != tt.checked {
			t.Errorf("rewrite(%q) = %s, want checked = %v", tt.src, q, tt.checked)
		}
	}
	// 200 nested assignments, each in the path of the next: each left side
	// appears once, so the program grows linearly.
	src := strings.Repeat(".[(", 200) + "." + strings.Repeat(` | .x = 1 | "k")]`, 200) + " = 2"
	q, err := gojq.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	g.rewrite(q)
	if got := strings.Count(q.String(), `.x = 1`); got != 200 {
		t.Errorf("rewrite of 200 nested assignments has %d of them", got)
	}
	if got, max := len(q.String()), 20*len(src); got > max {
		t.Errorf("rewrite of %d bytes gave %d bytes, want at most %d", len(src), got, max)
	}
}

// TestJQGuardPrelude: a filter gets the prelude definitions it calls,
// with those they call, and no others.
func TestJQGuardPrelude(t *testing.T) {
	g := newJQGuard(Deps{})
	for _, tt := range []struct {
		src  string
		want []string
	}{
		{`.a + 1 | {b: .}`, nil},
		{`.[.i] = 1`, []string{"_dk_path/1"}},
		{`pick(.a)`, []string{"_dk_native_setpath/2", "setpath/2", "pick/1"}},
		{`join(",")`, []string{"_dk_native_join/1", "join/1"}},
		{`def f: add; f`, []string{"_dk_native_add/0", "add/0"}},
		{`test("a")`, []string{"test/2", "test/1"}},
		{`gsub("a"; "b")`, []string{"_dk_path/1", "match/2", "sub/3", "gsub/2"}},
	} {
		q, err := gojq.Parse(tt.src)
		if err != nil {
			t.Fatal(err)
		}
		g.guard(q)
		var got []string
		for _, fd := range q.FuncDefs {
			if _, ok := g.preludeFunc[jqFuncKey{fd.Name, len(fd.Args)}]; ok {
				got = append(got, fmt.Sprintf("%s/%d", fd.Name, len(fd.Args)))
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("guard(%q) has prelude %q, want %q", tt.src, got, tt.want)
		}
	}
}

// TestJQConcurrencyLimit: evaluations beyond datakit_jq_concurrency wait
// for a slot within their own deadline.
func TestJQConcurrencyLimit(t *testing.T) {
	const limit = 50 * time.Millisecond
	n := mustBuild(t, jqKind(Deps{JQTimeout: limit, JQConcurrency: 2}), map[string]any{"jq": `. + 1`}, selfInput, true).(*jqNode)
	slots := n.limits.slots
	if cap(slots) != 2 {
		t.Fatalf("slots = %d, want 2", cap(slots))
	}
	slots <- struct{}{} // two evaluations are running
	slots <- struct{}{}

	start := time.Now()
	_, err := n.Run(context.Background(), testEnv(nil), []any{1})
	if want := "jq filter exceeded time limit of 50 ms"; errText(err) != want {
		t.Errorf("Run with every slot taken = %v, want %q", err, want)
	}
	if took := time.Since(start); took < limit {
		t.Errorf("Run with every slot taken gave up after %v, before its limit %v", took, limit)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Run(ctx, testEnv(nil), []any{1}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run(cancelled) waiting for a slot = %v, want context.Canceled", err)
	}

	// A slot freed while waiting is taken.
	done := make(chan error, 1)
	go func() {
		_, err := n.Run(context.Background(), testEnv(nil), []any{1})
		done <- err
	}()
	<-slots
	if err := <-done; err != nil {
		t.Errorf("Run after a slot was freed = %v", err)
	}
	<-slots
	if len(slots) != 0 {
		t.Errorf("%d slots still taken after the runs", len(slots))
	}

	if got := cap(newJQLimits(Deps{}).slots); got != runtime.GOMAXPROCS(0) {
		t.Errorf("default concurrency = %d, want GOMAXPROCS (%d)", got, runtime.GOMAXPROCS(0))
	}
}

// TestJQRegexPatternsBounded: patterns from request data do not pile up
// in gojq's per-code regex cache (about 2.5 KB each, kept for the code's
// life): the heap keeps at most jqRegexPatterns of them.
func TestJQRegexPatternsBounded(t *testing.T) {
	const patterns = 10000
	n := mustBuild(t, jqKind(Deps{}), map[string]any{"jq": `.re as $re | .s | test($re)`}, selfInput, true).(*jqNode)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range patterns {
		re := "a(b|c)+" + strconv.Itoa(i)
		got, err := n.Run(context.Background(), testEnv(nil), []any{map[string]any{"re": re, "s": "xabc" + strconv.Itoa(i)}})
		if err != nil || got[0] != true {
			t.Fatalf("Run(test(%q)) = %v, %v, want true", re, got, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(n)
	// Unbounded, the patterns alone would keep about 25 MB.
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Errorf("heap grew by %d bytes after %d distinct patterns, want at most %d", grown, patterns, 8<<20)
	}
}

// TestJQPreludeOrder: a prelude definition sees only the definitions
// before it, so one calling a name the prelude defines later would reach
// gojq's unchecked builtin instead.
func TestJQPreludeOrder(t *testing.T) {
	q, err := gojq.Parse(jqPrelude)
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]int{} // name/arity -> index of its last definition
	for i, fd := range q.FuncDefs {
		defined[fmt.Sprintf("%s/%d", fd.Name, len(fd.Args))] = i
	}
	for i, fd := range q.FuncDefs {
		jqWalk(fd.Body, func(term *gojq.Term) {
			if term.Func == nil {
				return
			}
			call := fmt.Sprintf("%s/%d", term.Func.Name, len(term.Func.Args))
			if j, ok := defined[call]; ok && j > i && !strings.HasPrefix(fd.Name, "_dk_native_") {
				t.Errorf("prelude %s/%d calls %s, defined after it", fd.Name, len(fd.Args), call)
			}
		}, nil)
	}
}

// BenchmarkJQGuard runs programs compiled with the guard and without it on
// the same input: the ratio of the two is the guard's cost. Besides ns/op
// it reports the CPU time of the benchmark's thread per op, which other
// processes on a loaded machine disturb far less.
func BenchmarkJQGuard(b *testing.B) {
	g := newJQGuard(Deps{})
	for _, bm := range []struct{ name, src, input string }{
		{"headers", `{Authorization: (.token_type + " " + .access_token), "X-Request-Id": .id}`,
			`{"token_type":"Bearer","access_token":"abc","id":"r1"}`},
		{"merge headers", benchFilter, `{"headers":{"Content-Type":"text/plain"},"query":{"api_key":"K"}}`},
		{"assignment", `.a.b = 1 | .c += 1`, `{"a":{"b":0},"c":1}`},
		{"dynamic assignment", `.items[.i] |= . + 1`, `{"items":[1,2,3],"i":1}`},
		{"regex", `test("^Bearer ")`, `"Bearer abc"`},
	} {
		guarded, plain, ok := guardedAndPlain(b, g, bm.src)
		if !ok {
			b.Fatalf("%q does not compile", bm.src)
		}
		in, err := engine.DecodeJSON([]byte(bm.input))
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name string
			code *gojq.Code
		}{{"guarded", guarded}, {"plain", plain}} {
			b.Run(bm.name+"/"+c.name, func(b *testing.B) {
				ctx, cancel := context.WithCancel(context.Background()) // like a request's
				defer cancel()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				b.ReportAllocs()
				cpu, ok := threadCPU()
				for b.Loop() {
					if v, _ := c.code.RunWithContext(ctx, in).Next(); v == nil {
						b.Fatal("no result")
					}
				}
				if end, ok2 := threadCPU(); ok && ok2 {
					b.ReportMetric(float64(end-cpu)/float64(b.N), "cpu-ns/op")
				}
			})
		}
	}
}

// rusageThread is Linux's RUSAGE_THREAD, which package syscall lacks.
const rusageThread = 1

// threadCPU is the CPU time of the calling thread.
func threadCPU() (time.Duration, bool) { return cpuTime(rusageThread) }

// cpuTime is the CPU time of the process (syscall.RUSAGE_SELF) or the
// calling thread (rusageThread).
func cpuTime(who int) (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
