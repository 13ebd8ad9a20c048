package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
)

// testPlugin is a plugin whose instances are built by the test from their
// config.
type testPlugin struct {
	name     string
	priority int
	build    func(cfg config.Plugin) gateway.Instance
}

func (p *testPlugin) Name() string                { return p.name }
func (p *testPlugin) Priority() int               { return p.priority }
func (p *testPlugin) Version() string             { return "0" }
func (p *testPlugin) Schema() config.PluginSchema { return config.PluginSchema{} }
func (p *testPlugin) Compile(_ context.Context, cfg config.Plugin, _ gateway.CompileEnv) (gateway.Instance, error) {
	return p.build(cfg), nil
}

var _ gateway.Plugin = (*testPlugin)(nil)

// tagger appends "<name>:<tag>" to the upstream X-Order header; its tag
// comes from config.tag. mode "error", "panic" or "exit" misbehaves.
type tagger struct{ name, tag, mode string }

func (a *tagger) Access(_ context.Context, ex *gateway.Exchange) error {
	switch a.mode {
	case "error":
		return errors.New("secret internal detail")
	case "panic":
		panic("boom")
	case "exit":
		ex.Exit(http.StatusTeapot, []byte("exited by "+a.name), http.Header{"X-Exit": {a.name}})
		return nil
	case "auth":
		c, err := ex.FindConsumer("", ex.Request().Header.Get("X-User"), "")
		if err == nil {
			ex.Authenticate(c, nil)
		}
	}
	ex.ServiceRequestHeader().Add("X-Order", a.name+":"+a.tag)
	return nil
}

func taggers(names map[string]int) []gateway.Plugin {
	var out []gateway.Plugin
	for name, prio := range names {
		out = append(out, &testPlugin{name: name, priority: prio, build: func(cfg config.Plugin) gateway.Instance {
			tag, _ := cfg.Config["tag"].(string)
			mode, _ := cfg.Config["mode"].(string)
			return &tagger{name: name, tag: tag, mode: mode}
		}})
	}
	return out
}

// TestPluginOrder: access handlers run by descending priority, ties by name
// descending (gateway.md §9.2).
func TestPluginOrder(t *testing.T) {
	up := newUpstream(t, nil)
	doc := serviceDoc(up, "", "      - {name: r, paths: [/]}\n") + `plugins:
  - {name: low, config: {tag: g}}
  - {name: high, config: {tag: g}}
  - {name: tie-a, config: {tag: g}}
  - {name: tie-b, config: {tag: g}}
`
	gw := startGateway(t, doc, setup{plugins: taggers(map[string]int{"low": 1, "high": 1000, "tie-a": 500, "tie-b": 500})})
	send(t, gw, request{target: "/"})
	if got, want := strings.Join(up.last(t).Header.Values("X-Order"), ","), "high:g,tie-b:g,tie-a:g,low:g"; got != want {
		t.Errorf("order = %q, want %q", got, want)
	}
}

// TestPluginScopes: the most specific instance runs, per gateway.md §3.5's
// precedence, and a consumer-scoped one only below the authenticating
// plugin (§9.3).
func TestPluginScopes(t *testing.T) {
	up := newUpstream(t, nil)
	host, port := up.hostPort()
	base := `_format_version: "3.0"
consumers: [{username: alice}]
services:
  - name: s
    host: ` + host + `
    port: ` + port + `
    routes: [{name: r, paths: [/]}]
plugins:
  - {name: auth}
`
	all := []string{
		"{name: p, route: r, service: s, consumer: alice, config: {tag: RSC}}",
		"{name: p, route: r, consumer: alice, config: {tag: RC}}",
		"{name: p, service: s, consumer: alice, config: {tag: SC}}",
		"{name: p, route: r, service: s, config: {tag: RS}}",
		"{name: p, consumer: alice, config: {tag: C}}",
		"{name: p, route: r, config: {tag: R}}",
		"{name: p, service: s, config: {tag: S}}",
		"{name: p, config: {tag: G}}",
	}
	plugins := append(taggers(map[string]int{"p": 10}),
		&testPlugin{name: "auth", priority: 100, build: func(config.Plugin) gateway.Instance { return &tagger{name: "auth", mode: "auth"} }})
	// Remove the most specific instance one at a time: the next in
	// precedence must take over.
	for i := range all {
		doc := base
		for _, p := range all[i:] {
			doc += "  - " + p + "\n"
		}
		want := strings.TrimSuffix(strings.SplitAfter(all[i], "tag: ")[1], "}}")
		gw := startGateway(t, doc, setup{plugins: plugins})
		send(t, gw, request{target: "/", header: http.Header{"X-User": {"alice"}}})
		if got := up.last(t).Header.Values("X-Order"); len(got) != 2 || got[1] != "p:"+want {
			t.Errorf("instances from %s on: X-Order %q, want p:%s", want, got, want)
		}
		// Without a consumer the consumer-scoped instances never apply.
		send(t, gw, request{target: "/"})
		got := up.last(t).Header.Values("X-Order")
		if strings.Contains(want, "C") {
			if len(got) == 2 && strings.Contains(got[1], "C") {
				t.Errorf("anonymous request ran consumer-scoped %q", got[1])
			}
		} else if len(got) != 2 || got[1] != "p:"+want {
			t.Errorf("anonymous, instances from %s on: X-Order %q, want p:%s", want, got, want)
		}
	}
}

// TestPluginFailures: errors and panics in access answer 500 without
// details, the gateway keeps serving, and Exit stops later handlers and
// proxying (gateway.md §9.2, §9.5).
func TestPluginFailures(t *testing.T) {
	up := newUpstream(t, nil)
	for _, mode := range []string{"error", "panic"} {
		doc := serviceDoc(up, "", "      - {name: r, paths: [/bad]}\n      - {name: good, paths: [/good]}\n") + `plugins:
  - {name: first, route: r, config: {mode: ` + mode + `}}
  - {name: second, config: {tag: x}}
`
		gw := startGateway(t, doc, setup{plugins: taggers(map[string]int{"first": 20, "second": 10})})
		before := up.count()
		resp := send(t, gw, request{target: "/bad"})
		checkError(t, resp, 500, "An unexpected error occurred")
		if strings.Contains(resp.body, "secret") || strings.Contains(resp.body, "boom") || up.count() != before {
			t.Errorf("%s: body %q, upstream reached: %v", mode, resp.body, up.count() != before)
		}
		if r := send(t, gw, request{target: "/good"}); r.StatusCode != 200 {
			t.Errorf("%s: next request = %d, want 200", mode, r.StatusCode)
		}
	}
	doc := serviceDoc(up, "", "      - {name: r, paths: [/]}\n") + `plugins:
  - {name: first, config: {mode: exit}}
  - {name: second, config: {tag: x}}
  - {name: hf}
`
	hf := &headerFilterPlugin{}
	gw := startGateway(t, doc, setup{plugins: append(taggers(map[string]int{"first": 20, "second": 10}), hf)})
	before := up.count()
	resp := send(t, gw, request{target: "/"})
	if resp.StatusCode != 418 || resp.body != "exited by first" || resp.Header.Get("X-Exit") != "first" ||
		resp.Header.Get("Server") != "datakit/test" || resp.Header.Get("X-Kong-Response-Latency") == "" || up.count() != before {
		t.Errorf("exit = %d %q %v; upstream reached: %v", resp.StatusCode, resp.body, resp.Header, up.count() != before)
	}
	if resp.Header.Get("X-Header-Filter") != "418" {
		t.Errorf("header_filter did not run on the exit: %v", resp.Header)
	}
	if len(hf.logged()) != 1 || hf.logged()[0].Status != 418 || hf.logged()[0].Source != "exit" {
		t.Errorf("log records %+v", hf.logged())
	}
}

// headerFilterPlugin (priority 100, above the exiting plugin) marks responses in header_filter
// and records log records.
type headerFilterPlugin struct {
	mu   sync.Mutex
	recs []gateway.LogRecord
}

func (p *headerFilterPlugin) Name() string                { return "hf" }
func (p *headerFilterPlugin) Priority() int               { return 100 }
func (p *headerFilterPlugin) Version() string             { return "0" }
func (p *headerFilterPlugin) Schema() config.PluginSchema { return config.PluginSchema{} }
func (p *headerFilterPlugin) Compile(context.Context, config.Plugin, gateway.CompileEnv) (gateway.Instance, error) {
	return p, nil
}
func (p *headerFilterPlugin) HeaderFilter(_ context.Context, ex *gateway.Exchange) error {
	ex.ResponseHeader().Set("X-Header-Filter", itoa(ex.ResponseStatus()))
	return nil
}
func (p *headerFilterPlugin) Log(rec *gateway.LogRecord) {
	p.mu.Lock()
	p.recs = append(p.recs, *rec)
	p.mu.Unlock()
}
func (p *headerFilterPlugin) logged() []gateway.LogRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]gateway.LogRecord(nil), p.recs...)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

// rewriter is a ResponseHandler; needs reports NeedsResponseBody when set.
type rewriter struct {
	needs *bool
	saw   chan string
}

func (r *rewriter) Response(_ context.Context, ex *gateway.Exchange) error {
	body, ok := ex.ServiceResponseBody()
	if !ok {
		r.saw <- "<streaming>"
		ex.ResponseHeader().Set("X-Seen", "streaming")
		return nil
	}
	r.saw <- string(body)
	ex.SetResponseBody([]byte("replaced: " + strings.ToUpper(string(body))))
	ex.SetResponseStatus(http.StatusAccepted)
	return nil
}

type needer struct{ rewriter }

func (n *needer) NeedsResponseBody(*gateway.Exchange) bool { return *n.needs }

// TestResponsePhase: a handler that needs the body sees it buffered and may
// replace it (Content-Length recomputed); one that does not gets the
// headers only and the body streams (gateway.md §8.3).
func TestResponsePhase(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		_, _ = w.Write([]byte("hello"))
	})
	doc := serviceDoc(up, "", "      - {name: r, paths: [/]}\n") + "plugins:\n  - {name: resp}\n"
	yes, no := true, false
	for _, c := range []struct {
		name   string
		inst   gateway.Instance
		body   string
		status int
	}{
		{"no NeedsResponseBody", &rewriter{saw: make(chan string, 1)}, "replaced: HELLO", 202},
		{"NeedsResponseBody true", &needer{rewriter{needs: &yes, saw: make(chan string, 1)}}, "replaced: HELLO", 202},
		{"NeedsResponseBody false", &needer{rewriter{needs: &no, saw: make(chan string, 1)}}, "hello", 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			inst := c.inst
			gw := startGateway(t, doc, setup{plugins: []gateway.Plugin{&testPlugin{name: "resp", priority: 1,
				build: func(config.Plugin) gateway.Instance { return inst }}}})
			resp := send(t, gw, request{target: "/"})
			if resp.StatusCode != c.status || resp.body != c.body || resp.ContentLength != int64(len(c.body)) {
				t.Errorf("got %d %q (Content-Length %d), want %d %q", resp.StatusCode, resp.body, resp.ContentLength, c.status, c.body)
			}
			if c.status == 200 && resp.Header.Get("X-Seen") != "streaming" {
				t.Errorf("streaming handler did not run before the headers were sent")
			}
		})
	}
}
