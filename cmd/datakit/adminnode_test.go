package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/gateway/settings"
)

// TestGraphCompiler: the Admin API's compiler draws what `datakit graph
// dot` draws (spec/datakit.md §13.1).
func TestGraphCompiler(t *testing.T) {
	st, err := settings.Load(settings.LoadOptions{SearchPaths: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("..", "..", "engine", "testdata", "configs", "token_exchange.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := engine.ParseDocument(data)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := graphCompiler(st, newLogger(st, io.Discard)).Compile(doc.(map[string]any))
	if err != nil {
		t.Fatalf("Compile = %v", err)
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "engine", "testdata", "token_exchange.dot"))
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.DOT(); !bytes.Equal(got, want) {
		t.Errorf("DOT =\n%s\nwant\n%s", got, want)
	}
}
