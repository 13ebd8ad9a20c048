// Package graphs_test loads every example graph in this folder: each must
// validate, render to its golden DOT and run offline against its mocks with
// the golden result.
package graphs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/graphrun"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestExampleGraphs(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example graphs: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(file, ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := engine.ParseDocument(data)
			if err != nil {
				t.Fatal(err)
			}
			rec := &graphrun.Recorder{}
			plan, err := graphrun.Compile(doc, graphrun.Options{}, rec)
			if err != nil {
				t.Fatalf("Compile(%s) = %v", file, err)
			}
			golden(t, filepath.Join("testdata", name, "graph.dot"), plan.DOT())

			dir := filepath.Join("testdata", name)
			var req graphrun.Request
			readJSON(t, filepath.Join(dir, "request.json"), &req)
			opts := graphrun.Options{Mocks: map[string]graphrun.Response{}, NoTiming: true, Version: "test"}
			mocks, _ := filepath.Glob(filepath.Join(dir, "mocks", "*.json"))
			for _, m := range mocks {
				var resp graphrun.Response
				readJSON(t, m, &resp)
				opts.Mocks[strings.TrimSuffix(filepath.Base(m), ".json")] = resp
			}
			res, err := graphrun.Run(context.Background(), doc, req, opts)
			if err != nil {
				t.Fatalf("Run(%s) = %v", file, err)
			}
			if res.Outcome == "error" {
				t.Errorf("Run(%s) outcome = error, want success; response %+v", file, res.Response)
			}
			out, err := graphrun.Encode(res)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(dir, "run.json"), append(out, '\n'))
		})
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
