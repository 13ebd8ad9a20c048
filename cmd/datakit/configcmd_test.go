package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/settings"
	"github.com/datakit-gateway/datakit/gateway/store"
	"github.com/datakit-gateway/datakit/nodes"
)

// importDoc has something of every common kind, nested, with a datakit
// plugin whose graph is compiled on import.
const importDoc = `_format_version: "3.0"
services:
  - name: billing
    url: %UPSTREAM%
    routes:
      - name: billing-api
        paths: ["/billing"]
        plugins:
          - name: key-auth
    plugins:
      - name: datakit
        config:
          nodes:
            - {name: HELLO, type: static, values: {greeting: hi}}
consumers:
  - username: alice
    keyauth_credentials:
      - key: alice-key
upstreams:
  - name: pool
    targets:
      - target: 127.0.0.1:9
`

// importDocCount is the number of entities importDoc holds.
const importDocCount = 8

// badImportDoc fails only when the datakit plugin's graph is compiled.
const badImportDoc = `_format_version: "3.0"
services:
  - name: other
    url: http://127.0.0.1:9
    plugins:
      - name: datakit
        config: {nodes: [{name: X, type: jq}]}
`

// configBackend is a database the config commands run against.
type configBackend struct {
	name string
	// fresh returns the --set arguments of a new, empty database.
	fresh func(t *testing.T) []string
}

func configBackends() []configBackend {
	return []configBackend{
		{"sqlite", func(t *testing.T) []string {
			return []string{"--set", "database=sqlite", "--set", "sqlite_path=" + filepath.Join(t.TempDir(), "datakit.db")}
		}},
		{"postgres", func(t *testing.T) []string {
			var args []string
			for _, s := range newPGDatabase(t).settings() {
				args = append(args, "--set", s)
			}
			return args
		}},
	}
}

// idsOf lists the ids of every entity, per collection.
func idsOf(e *config.Entities) map[string][]string {
	ids := map[string][]string{}
	add := func(kind, id string) { ids[kind] = append(ids[kind], id) }
	for _, x := range e.Services {
		add("services", x.ID)
	}
	for _, x := range e.Routes {
		add("routes", x.ID)
	}
	for _, x := range e.Consumers {
		add("consumers", x.ID)
	}
	for _, x := range e.Plugins {
		add("plugins", x.ID)
	}
	for _, x := range e.Upstreams {
		add("upstreams", x.ID)
	}
	for _, x := range e.Targets {
		add("targets", x.ID)
	}
	for _, x := range e.KeyauthCredentials {
		add("keyauth_credentials", x.ID+"/"+x.Key)
	}
	for k := range ids {
		slices.Sort(ids[k])
	}
	return ids
}

func sameIDs(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestConfigImportExport: import validates with the plugins compiled and
// writes one revision; re-importing is idempotent; export renders the
// database as a document that loads back to the same entities, to stdout or
// a new file, and never overwrites one.
func TestConfigImportExport(t *testing.T) {
	for _, b := range configBackends() {
		t.Run(b.name, func(t *testing.T) {
			db := b.fresh(t)
			cli := func(args ...string) (int, string, string) {
				t.Helper()
				return runCLI(t, append(args, db...)...)
			}
			doc := writeFile(t, "kong.yml", strings.ReplaceAll(importDoc, "%UPSTREAM%", "http://127.0.0.1:9"))
			want, err := config.LoadDeclarative([]byte(strings.ReplaceAll(importDoc, "%UPSTREAM%", "http://127.0.0.1:9")),
				config.LoadOptions{Plugins: testPlugins(t)})
			if err != nil {
				t.Fatal(err)
			}

			// An invalid file writes nothing.
			code, _, stderr := cli("config", "import", writeFile(t, "bad.yml", badImportDoc))
			if code != 1 || !strings.Contains(stderr, `nodes[0] "X" (jq): jq: required field missing`) {
				t.Errorf("import of an invalid file = %d %q, want 1 and the graph error", code, stderr)
			}
			if code, stdout, stderr := cli("config", "export"); code != 0 || stdout != "_format_version: \"3.0\"\n_transform: false\n" {
				t.Errorf("export after a refused import = %d %q %q, want an empty document", code, stdout, stderr)
			}

			for i := range 2 { // the second import is idempotent
				code, stdout, stderr := cli("config", "import", doc)
				if code != 0 || stdout != "import successful: 8 entities\n" {
					t.Fatalf("import #%d = %d %q %q", i+1, code, stdout, stderr)
				}
			}
			if want.Count() != importDocCount {
				t.Fatalf("the document holds %d entities, the test expects %d", want.Count(), importDocCount)
			}

			code, exported, stderr := cli("config", "export")
			if code != 0 || !strings.HasPrefix(exported, "_format_version: \"3.0\"\n") {
				t.Fatalf("export = %d %q %q", code, exported, stderr)
			}
			got, err := config.LoadDeclarative([]byte(exported), config.LoadOptions{Plugins: testPlugins(t)})
			if err != nil {
				t.Fatalf("the export does not load: %v\n%s", err, exported)
			}
			// Key-auth credentials get random ids per load (§5.3); compare keys.
			wantIDs, gotIDs := idsOf(want), idsOf(got)
			for _, m := range []map[string][]string{wantIDs, gotIDs} {
				for i, v := range m["keyauth_credentials"] {
					m["keyauth_credentials"][i] = v[strings.Index(v, "/")+1:]
				}
			}
			if !sameIDs(gotIDs, wantIDs) {
				t.Errorf("exported entities = %v, want the imported ones %v", gotIDs, wantIDs)
			}

			// To a file: the same document; an existing file is left alone.
			out := filepath.Join(t.TempDir(), "export.yml")
			if code, stdout, stderr := cli("config", "export", out); code != 0 || stdout != "" {
				t.Fatalf("export FILE = %d %q %q", code, stdout, stderr)
			}
			if data, err := os.ReadFile(out); err != nil || string(data) != exported {
				t.Errorf("exported file = %q (%v), want the stdout export", data, err)
			}
			if err := os.WriteFile(out, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr = cli("config", "export", out)
			if data, _ := os.ReadFile(out); code != 1 || string(data) != "keep me" || !strings.Contains(stderr, "already exists") {
				t.Errorf("export over an existing file = %d %q, file %q; want 1 and the file untouched", code, stderr, data)
			}

			// The export imports into a fresh database and exports identically.
			db = b.fresh(t)
			if code, stdout, stderr := cli("config", "import", out+".missing"); code != 2 {
				t.Errorf("import of a missing file = %d %q %q, want 2", code, stdout, stderr)
			}
			again := writeFile(t, "again.yml", exported)
			if code, stdout, stderr := cli("config", "import", again); code != 0 || stdout != "import successful: 8 entities\n" {
				t.Fatalf("import of the export = %d %q %q", code, stdout, stderr)
			}
			// Import stamps updated_at; everything else comes back as it was.
			if code, second, _ := cli("config", "export"); code != 0 || withoutUpdatedAt(second) != withoutUpdatedAt(exported) {
				t.Errorf("round trip changed the export (updated_at aside):\n%s\nwant\n%s", second, exported)
			}
		})
	}
}

// withoutUpdatedAt drops the updated_at lines of an exported document.
func withoutUpdatedAt(doc string) string {
	lines := strings.Split(doc, "\n")
	lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "updated_at: ") })
	return strings.Join(lines, "\n")
}

// testPlugins are the bundled plugins with default settings.
func testPlugins(t *testing.T) config.PluginSchemas {
	t.Helper()
	st, err := settings.Load(settings.LoadOptions{SearchPaths: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	caches := nodes.NewCacheStores()
	t.Cleanup(func() { _ = caches.Close() })
	p, err := buildPlugins(st, newLogger(st, io.Discard), caches)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigImportExportRefusals: both need a database; a SQLite file in
// use by a node is refused at once; -c names the settings file.
func TestConfigImportExportRefusals(t *testing.T) {
	doc := writeFile(t, "kong.yml", strings.ReplaceAll(importDoc, "%UPSTREAM%", "http://127.0.0.1:9"))
	for _, args := range [][]string{{"config", "import", doc}, {"config", "export"}} {
		code, _, stderr := runCLI(t, append(args, "--set", "database=off")...)
		if code != 1 || !strings.Contains(stderr, "needs a database") {
			t.Errorf("%v with database = off: %d %q, want 1", args, code, stderr)
		}
	}
	if code, _, _ := runCLI(t, "config", "import"); code != 2 {
		t.Errorf("import without FILE = %d, want 2", code)
	}
	if code, _, _ := runCLI(t, "config", "export", "a", "b"); code != 2 {
		t.Errorf("export with two files = %d, want 2", code)
	}

	dbPath := filepath.Join(t.TempDir(), "datakit.db")
	conf := writeFile(t, "datakit.conf", "database = sqlite\nsqlite_path = "+dbPath+"\n")
	s, err := store.OpenSQLite(context.Background(), store.SQLiteOptions{Path: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "config", "import", doc, "-c", conf)
	if code != 1 || !strings.Contains(stderr, "is in use by another datakit process") {
		t.Errorf("import while the database is open elsewhere = %d %q, want 1", code, stderr)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(t, "config", "import", doc, "-c", conf); code != 0 || stdout != "import successful: 8 entities\n" {
		t.Errorf("import -c = %d %q %q", code, stdout, stderr)
	}
}

// TestConfigImportIntoRunningCluster: a file imported into the PostgreSQL
// database of a serving node is served by that node (one revision, picked
// up like any other write).
func TestConfigImportIntoRunningCluster(t *testing.T) {
	pg := newPGDatabase(t)
	n := startTestNode(t, pg.settings()...)
	up := upstreamSaying(t, "billed", 0)
	doc := writeFile(t, "kong.yml", `_format_version: "3.0"
services:
  - name: billing
    url: `+up+`
    routes: [{name: billing-api, paths: ["/billing"]}]
`)
	before := revisionOf(n.admin)
	var args []string
	for _, s := range pg.settings() {
		args = append(args, "--set", s)
	}
	if code, stdout, stderr := runCLI(t, append([]string{"config", "import", doc}, args...)...); code != 0 || stdout != "import successful: 2 entities\n" {
		t.Fatalf("import = %d %q %q", code, stdout, stderr)
	}
	waitFor(t, func() bool { code, body, _ := fetch(n.proxy + "/billing"); return code == 200 && body == "billed" })
	if after := revisionOf(n.admin); after != before+1 {
		t.Errorf("revision after import = %d, want %d (one transaction)", after, before+1)
	}
}
