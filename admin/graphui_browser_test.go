package admin_test

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/datakit-gateway/datakit/admin"
	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/nodes"
)

const (
	viewerToken    = "viewer-t0ken"
	branchPluginID = "6c2e0b9f-1c4d-4a1f-8e3b-8d2f7a5b2c03"
)

// viewerEnv is a DB-less Admin API with an admin token over a real gateway
// running two datakit plugins: graphs/token-exchange.yaml
// ("token-exchange") and engine/testdata/configs/branch.yaml
// ("auth-branch" on a service: both phases, a branch, a label with `"` and `\`).
func viewerEnv(t *testing.T) *env {
	t.Helper()
	config := func(path string) string {
		doc, err := engine.ParseDocument([]byte(readFile(t, path)))
		if err != nil {
			t.Fatalf("ParseDocument(%s) = %v", path, err)
		}
		return mustJSON(t, doc)
	}
	doc := `{"_format_version":"3.0",
	  "plugins":[{"id":"` + graphPluginID + `","name":"datakit","instance_name":"token-exchange","config":` +
		config(filepath.Join("..", "graphs", "token-exchange.yaml")) + `}],
	  "services":[{"name":"api","url":"http://127.0.0.1:9000","plugins":[
	    {"id":"` + branchPluginID + `","name":"datakit","instance_name":"auth-branch","config":` +
		config(filepath.Join("..", "engine", "testdata", "configs", "branch.yaml")) + `}]}]}`
	reg := engine.NewRegistry()
	nodes.Register(reg, nodes.Deps{Version: "test"})
	return newEnv(t, doc, func(o *admin.Options) {
		o.AdminToken = viewerToken
		o.Graphs = admin.GraphsFunc(func(cfg map[string]any) (*engine.Plan, error) {
			return engine.Compile(cfg, reg, engine.Options{})
		})
	})
}

// viewerGraph is GET /plugins/{p}/graph as the page reads it.
type viewerGraph struct {
	Nodes []struct{ Name, Type, Phase string } `json:"nodes"`
	Edges []struct {
		Source      string  `json:"source"`
		SourceField *string `json:"source_field"`
		Target      string  `json:"target"`
		TargetField *string `json:"target_field"`
		Kind        string  `json:"kind"`
	} `json:"edges"`
}

func (e *env) viewerGraph(t *testing.T, plugin string) viewerGraph {
	t.Helper()
	w := e.do(t, req{path: "/plugins/" + plugin + "/graph", header: map[string]string{"Kong-Admin-Token": viewerToken}})
	var g viewerGraph
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &g) != nil {
		t.Fatalf("GET /plugins/%s/graph = %d %s, want 200", plugin, w.Code, w.Body)
	}
	return g
}

// traceRecord is the part of a debug trace (spec/datakit.md §10) the test
// checks the page against.
type traceRecord struct {
	Nodes []struct {
		Name, Status, Error string
	} `json:"nodes"`
	Events []struct {
		Name, Action string
		At           float64
	} `json:"events"`
}

// failedTrace runs token-exchange offline with the token service answering
// 403: AUTH_REQUEST fails. It returns the trace as the API sent it.
func (e *env) failedTrace(t *testing.T) (json.RawMessage, traceRecord) {
	t.Helper()
	body := `{"request":{"path":"/x","query":{"api_key":"K"}},
	  "mocks":{"AUTH_REQUEST":{"status":403,"headers":{"Content-Type":"application/json"},"body":{"code":403}}}}`
	w := e.do(t, req{method: http.MethodPost, path: "/plugins/token-exchange/graph/run", body: body,
		header: map[string]string{"Content-Type": "application/json", "Kong-Admin-Token": viewerToken}})
	var out struct {
		Trace json.RawMessage `json:"trace"`
	}
	var rec traceRecord
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &out) != nil || json.Unmarshal(out.Trace, &rec) != nil {
		t.Fatalf("POST graph/run = %d %s, want 200 with a trace", w.Code, w.Body)
	}
	return out.Trace, rec
}

// drawnNode is a node of the page's SVG with its box in page pixels.
type drawnNode struct {
	Name     string  `json:"name"`
	Status   string  `json:"status"`
	Duration string  `json:"duration"`
	Text     string  `json:"text"`
	Classes  string  `json:"classes"`
	Fill     string  `json:"fill"`
	X        float64 `json:"x"`
	Y        float64 `json:"y"`
	W        float64 `json:"w"`
	H        float64 `json:"h"`
}

const drawnNodesJS = `return [...document.querySelectorAll("#graph g.node")].map(g => {
  const r = g.querySelector("rect.box").getBoundingClientRect();
  return {name: g.dataset.node, status: g.dataset.status || "", duration: g.dataset.duration || "",
    text: g.querySelector("text.status").textContent, classes: g.getAttribute("class"),
    fill: getComputedStyle(g.querySelector("rect.box")).fill, x: r.x, y: r.y, w: r.width, h: r.height};
});`

// drawnEdge is an edge group of the SVG with its label lines.
type drawnEdge struct {
	Source string   `json:"source"`
	Target string   `json:"target"`
	Kind   string   `json:"kind"`
	Path   bool     `json:"path"`
	Lines  []string `json:"lines"`
}

const drawnEdgesJS = `return [...document.querySelectorAll("#graph g.edge")].map(g => {
  const label = [...document.querySelectorAll("#graph g.label")].find(l =>
    l.dataset.source === g.dataset.source && l.dataset.target === g.dataset.target &&
    l.classList.contains("label-" + g.dataset.kind));
  return {source: g.dataset.source, target: g.dataset.target, kind: g.dataset.kind,
    path: (g.querySelector("path")?.getTotalLength() || 0) > 0,
    lines: label ? [...label.querySelectorAll("text")].map(t => t.textContent) : []};
});`

// checkDrawn asserts that the page drew exactly the graph's nodes, each
// visible and apart from the others, and every edge with its label, left
// to right.
func checkDrawn(t *testing.T, d *webDriver, g viewerGraph) map[string]drawnNode {
	t.Helper()
	var drawn []drawnNode
	d.eval(&drawn, drawnNodesJS)
	byName := map[string]drawnNode{}
	for _, n := range drawn {
		byName[n.Name] = n
	}
	var want []string
	for _, n := range g.Nodes {
		want = append(want, n.Name)
		dn, ok := byName[n.Name]
		switch {
		case !ok:
			t.Errorf("node %q is not drawn", n.Name)
		case dn.W < 20 || dn.H < 20:
			t.Errorf("node %q is drawn %gx%g px, want a visible box", n.Name, dn.W, dn.H)
		}
	}
	if len(drawn) != len(g.Nodes) {
		t.Errorf("drawn nodes = %v, want %v", names(drawn), want)
	}
	for i, a := range drawn {
		for _, b := range drawn[i+1:] {
			if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				t.Errorf("nodes %q and %q overlap: %+v %+v", a.Name, b.Name, a, b)
			}
		}
	}

	var edges []drawnEdge
	d.eval(&edges, drawnEdgesJS)
	drawnLabels := map[string]bool{}
	for _, e := range edges {
		if !e.Path {
			t.Errorf("edge %s -> %s (%s) has no path", e.Source, e.Target, e.Kind)
		}
		for _, l := range e.Lines {
			drawnLabels[e.Source+" "+e.Target+" "+l] = true
		}
	}
	for _, e := range g.Edges {
		label := e.Kind
		if e.Kind == "data" {
			label = *e.SourceField + " → " + *e.TargetField
		}
		if !drawnLabels[e.Source+" "+e.Target+" "+label] {
			t.Errorf("edge %s -> %s labelled %q is not drawn; drawn: %v", e.Source, e.Target, label, edges)
		}
		if s, t2 := byName[e.Source], byName[e.Target]; s.X+s.W > t2.X {
			t.Errorf("edge %s -> %s runs right to left: source ends at x=%g, target starts at x=%g", e.Source, e.Target, s.X+s.W, t2.X)
		}
	}
	return byName
}

func names(ns []drawnNode) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}

// TestGraphViewerBrowser loads the graph viewer in headless Chromium from a
// running Admin API (with admin_token) over a real gateway: the page asks
// for the token, lists the datakit plugins, draws every node and edge of
// token-exchange, marks the failed node of a pasted trace with its status
// and duration, runs the graph offline through the API, and draws a
// two-phase graph with the response phase on the right. The console must
// stay free of errors and CSP violations. A screenshot is saved in the
// test's temp dir (DATAKIT_TEST_SCREENSHOT_DIR, when set, keeps it).
func TestGraphViewerBrowser(t *testing.T) {
	// Registered first, so it runs after every other cleanup: no goroutine
	// of the servers, the WebDriver client or chromedriver's pipes remains.
	running := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, running) })
	chromium, driver := requireChromium(t)

	e := viewerEnv(t)
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	tokenGraph := e.viewerGraph(t, "token-exchange")
	branchGraph := e.viewerGraph(t, "auth-branch")
	traceJSON, trace := e.failedTrace(t)

	d := startWebDriver(t, chromium, driver)

	// The page's files need no token; the API does, and the page says so.
	d.navigate(srv.URL + "/graph/#plugin=token-exchange")
	d.waitFor("the token request", `document.getElementById("message").textContent.includes("token")`)

	d.typeText("#token", viewerToken)
	d.click("#token-form button")
	d.waitFor("the token-exchange graph", `document.getElementById("graph").dataset.plugin === "token-exchange"`)

	var listed []string
	d.eval(&listed, `return [...document.querySelectorAll("#plugin-list a .name")].map(a => a.textContent)`)
	if !slices.Equal(listed, []string{"auth-branch", "token-exchange"}) {
		t.Errorf("plugin list = %q, want [auth-branch token-exchange]", listed)
	}
	checkDrawn(t, d, tokenGraph)

	// Paste the failed run's trace (as a clipboard paste sets the text).
	d.eval(nil, `document.getElementById("trace-input").value = arguments[0]`, string(traceJSON))
	d.click("#trace-show")
	d.waitFor("the trace overlay", `document.getElementById("graph").dataset.trace === "applied"`)
	nodesAfter := checkDrawn(t, d, tokenGraph)

	statuses, errs := map[string]string{}, map[string]string{}
	for _, n := range trace.Nodes {
		statuses[n.Name], errs[n.Name] = n.Status, n.Error
	}
	if statuses["AUTH_REQUEST"] != "NODE_ERROR" || statuses["STATIC_INPUTS"] != "NODE_COMPLETE" {
		t.Fatalf("trace statuses = %v, want AUTH_REQUEST NODE_ERROR and STATIC_INPUTS NODE_COMPLETE", statuses)
	}
	for name, status := range statuses {
		n := nodesAfter[name]
		if n.Status != status || !strings.Contains(" "+n.Classes+" ", " status-"+status+" ") {
			t.Errorf("node %q: data-status %q, class %q; want %s from the trace", name, n.Status, n.Classes, status)
		}
	}
	failed, complete := nodesAfter["AUTH_REQUEST"], nodesAfter["STATIC_INPUTS"]
	if !regexp.MustCompile(`^error · [0-9.]+ (µs|ms|s)$`).MatchString(failed.Text) {
		t.Errorf("AUTH_REQUEST status text = %q, want \"error · <duration>\"", failed.Text)
	}
	if failed.Fill == complete.Fill || failed.Fill == "" {
		t.Errorf("failed node fill %q, complete node fill %q: want distinct colours from style.css", failed.Fill, complete.Fill)
	}
	var run, end float64
	for _, ev := range trace.Events {
		if ev.Name == "AUTH_REQUEST" && ev.Action == "run" {
			run = ev.At
		}
		if ev.Name == "AUTH_REQUEST" && ev.Action == "fail" {
			end = ev.At
		}
	}
	var shown float64
	if err := json.Unmarshal([]byte(failed.Duration), &shown); err != nil || math.Abs(shown-(end-run)) > 1e-9 {
		t.Errorf("AUTH_REQUEST data-duration = %q, want %g (fail at %g - run at %g)", failed.Duration, end-run, end, run)
	}
	var rows [][]string
	d.eval(&rows, `return [...document.querySelectorAll("#trace-table tbody tr")].map(tr => [...tr.cells].map(c => c.textContent))`)
	if len(rows) != len(trace.Nodes) {
		t.Errorf("trace table has %d rows, want %d", len(rows), len(trace.Nodes))
	}
	for _, r := range rows {
		if len(r) == 6 && r[0] == "AUTH_REQUEST" && (r[3] != "error" || r[5] != errs["AUTH_REQUEST"] || r[5] == "") {
			t.Errorf("trace table row for AUTH_REQUEST = %q, want status error and the trace's error %q", r, errs["AUTH_REQUEST"])
		}
	}

	shots := t.TempDir()
	if keep := os.Getenv("DATAKIT_TEST_SCREENSHOT_DIR"); keep != "" {
		shots = keep
	}
	screenshot := func(name string) {
		path := filepath.Join(shots, name)
		d.screenshot(path)
		t.Logf("screenshot: %s", path)
	}
	screenshot("graph-viewer-trace.png")

	// The page's own offline run: a same-origin POST through the
	// Admin API's protections, every call mocked with a 200.
	d.click("#run-button")
	d.waitFor("the offline run", `document.getElementById("message").textContent.startsWith("Offline run")`)
	var runStatus string
	d.eval(&runStatus, `return document.querySelector('#graph g.node[data-node="AUTH_REQUEST"]').dataset.status`)
	if runStatus != "NODE_COMPLETE" {
		t.Errorf("after the page's offline run AUTH_REQUEST is %q, want NODE_COMPLETE", runStatus)
	}

	// Selecting the other plugin: both phases, response on the right.
	d.click(`#plugin-list a[data-plugin="` + branchPluginID + `"]`)
	d.waitFor("the auth-branch graph", `document.getElementById("graph").dataset.plugin === "`+branchPluginID+`"`)
	drawn := checkDrawn(t, d, branchGraph)
	lastAccess, firstResponse := math.Inf(-1), math.Inf(1)
	for _, n := range branchGraph.Nodes {
		dn := drawn[n.Name]
		if n.Phase == "response" {
			firstResponse = min(firstResponse, dn.X)
		} else {
			lastAccess = max(lastAccess, dn.X+dn.W)
		}
	}
	if !(lastAccess < firstResponse) {
		t.Errorf("response nodes start at x=%g, left of the access nodes' right edge x=%g", firstResponse, lastAccess)
	}
	screenshot("graph-viewer-branch.png")

	// An unknown plugin: the API's message, and no stale drawing.
	d.eval(nil, `location.hash = "plugin=nope"`)
	d.waitFor("the unknown plugin's message", `document.getElementById("message").textContent === "Not found"`)
	var left int
	d.eval(&left, `return document.querySelectorAll("#graph g.node").length`)
	if left != 0 {
		t.Errorf("after selecting an unknown plugin %d nodes are still drawn, want 0", left)
	}

	// Console: the API's two expected errors (401 before the token, 404 of
	// the unknown plugin), nothing else.
	entries, ok := d.browserLog()
	if !ok {
		t.Log("chromedriver exposes no browser log: console not checked")
		return
	}
	for _, en := range entries {
		expected := strings.Contains(en.Message, "/plugins?size=1000 - ") && strings.Contains(en.Message, "status of 401") ||
			strings.Contains(en.Message, "/plugins/nope/graph - ") && strings.Contains(en.Message, "status of 404")
		if strings.Contains(en.Message, "Content Security Policy") || (en.Level == "SEVERE" && !expected) {
			t.Errorf("browser console: %s %s", en.Level, en.Message)
		}
	}
	// The check above can fail: an error logged now is seen.
	d.eval(nil, `console.error("graphui-probe")`)
	entries, _ = d.browserLog()
	if !slices.ContainsFunc(entries, func(en logEntry) bool { return strings.Contains(en.Message, "graphui-probe") }) {
		t.Errorf("browser log does not show a console.error: %v", entries)
	}
}
