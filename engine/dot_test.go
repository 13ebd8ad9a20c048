package engine

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// TestDOT renders example graphs and compares them with golden files.
// token_exchange.dot is spec §13.1's output copied by hand: never -update it.
func TestDOT(t *testing.T) {
	tests := []struct{ config, golden string }{
		{"token_exchange.yaml", "token_exchange.dot"},
		{"reshape.yaml", "reshape.dot"},
		{"branch.yaml", "branch.dot"},
		{"exit_fanout.yaml", "exit_fanout.dot"},
	}
	for _, tt := range tests {
		t.Run(tt.config, func(t *testing.T) {
			cfg, err := os.ReadFile(filepath.Join("testdata", "configs", tt.config))
			if err != nil {
				t.Fatal(err)
			}
			got := mustCompile(t, nil, string(cfg), Options{}).DOT()
			golden := filepath.Join("testdata", tt.golden)
			if *update && tt.golden != "token_exchange.dot" {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("DOT(%s) =\n%s\nwant\n%s", tt.config, got, want)
			}
		})
	}
}

// TestDOTDeterministic compiles the same configuration repeatedly: map
// iteration must never leak into the output.
func TestDOTDeterministic(t *testing.T) {
	for _, name := range []string{"token_exchange.yaml", "branch.yaml"} {
		cfg, err := os.ReadFile(filepath.Join("testdata", "configs", name))
		if err != nil {
			t.Fatal(err)
		}
		first := mustCompile(t, nil, string(cfg), Options{}).DOT()
		for i := range 20 {
			if got := mustCompile(t, nil, string(cfg), Options{}).DOT(); !bytes.Equal(got, first) {
				t.Fatalf("DOT(%s) run %d differs:\n%s\nfirst\n%s", name, i, got, first)
			}
		}
	}
}

// TestDOTBothSidesSame is spec §13.13 #1: an edge written on either side
// draws the same graph.
func TestDOTBothSidesSame(t *testing.T) {
	pairs := [][2]string{
		{`nodes: [{name: FILTER, type: jq, jq: ., input: GET_PROPERTY}, {name: GET_PROPERTY, type: property, property: kong.ctx.shared.x}]`,
			`nodes: [{name: FILTER, type: jq, jq: .}, {name: GET_PROPERTY, type: property, property: kong.ctx.shared.x, output: FILTER}]`},
		{`nodes: [{name: API, type: call, url: "http://x", outputs: {body: B, headers: H}}, {name: B, type: jq, jq: .}, {name: H, type: jq, jq: .}]`,
			`nodes: [{name: API, type: call, url: "http://x"}, {name: B, type: jq, jq: ., input: API.body}, {name: H, type: jq, jq: ., input: API.headers}]`},
	}
	for _, pair := range pairs {
		a := mustCompile(t, nil, pair[0], Options{}).DOT()
		b := mustCompile(t, nil, pair[1], Options{}).DOT()
		if !bytes.Equal(a, b) {
			t.Errorf("DOT(%q) =\n%s\nDOT(%q) =\n%s", pair[0], a, pair[1], b)
		}
	}
}
