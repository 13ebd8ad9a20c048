package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/admin"
	"github.com/datakit-gateway/datakit/gateway/store"
)

// newDBEnv starts an Admin API in sqlite mode over a real SQLite store;
// mod, when not nil, changes the options further.
func newDBEnv(t *testing.T, mod func(*admin.Options)) *env {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), store.SQLiteOptions{Path: filepath.Join(t.TempDir(), "datakit.db")})
	if err != nil {
		t.Fatalf("OpenSQLite = %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := newEnv(t, "", func(o *admin.Options) {
		o.Database = "sqlite"
		o.Store = st
		if mod != nil {
			mod(o)
		}
	})
	e.store = st
	return e
}

// call sends a request and checks its status; it returns the decoded body.
func (e *env) call(t *testing.T, method, path, body string, status int) map[string]any {
	t.Helper()
	h := map[string]string{}
	switch {
	case body == "":
	case strings.HasPrefix(body, "{"):
		h["Content-Type"] = jsonType
	default:
		h["Content-Type"] = formType
	}
	w := e.do(t, req{method: method, path: path, body: body, header: h})
	if w.Code != status {
		t.Fatalf("%s %s %s = %d %s, want %d", method, path, body, w.Code, w.Body, status)
	}
	if method != http.MethodGet && status < 300 && w.Header().Get("X-Datakit-Config-Revision") == "" {
		t.Errorf("%s %s: no X-Datakit-Config-Revision", method, path)
	}
	var out map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return out
}

func want(t *testing.T, what string, got any, wantJSON string) {
	t.Helper()
	if !jsonEqual(t, mustJSON(t, got), wantJSON) {
		t.Errorf("%s = %s, want %s", what, mustJSON(t, got), compact(wantJSON))
	}
}

func TestStoreServicesCRUD(t *testing.T) {
	e := newDBEnv(t, nil)
	svc := e.call(t, "POST", "/services", `{"name":"billing","url":"http://billing.test:8080/v1","tags":["a"]}`, 201)
	want(t, "created service", []any{svc["host"], svc["port"], svc["path"], svc["protocol"], svc["retries"]},
		`["billing.test",8080,"/v1","http",5]`)
	id := svc["id"].(string)

	dup := e.call(t, "POST", "/services", `{"name":"billing","host":"x.test"}`, 409)
	want(t, "duplicate", dup, `{"code":5,"name":"unique constraint violation","message":"UNIQUE violation detected on '{name=\"billing\"}'","fields":{"name":"billing"}}`)
	pk := e.call(t, "POST", "/services", `{"id":"`+id+`","host":"x.test"}`, 409)
	want(t, "primary key", pk["code"], `3`)
	bad := e.call(t, "POST", "/services", `{"path":"x"}`, 400)
	want(t, "violation", bad, `{"code":2,"name":"schema violation","message":"2 schema violations (host: required field missing; path: should start with: /)","fields":{"host":"required field missing","path":"should start with: /"}}`)

	form := e.call(t, "POST", "/services", "name=orders&host=orders.test&port=8081&enabled=false&tags[]=x&tags[]=y&path=", 201)
	want(t, "form service", []any{form["port"], form["enabled"], form["tags"], form["path"]}, `[8081,false,["x","y"],null]`)

	got := e.call(t, "GET", "/services/billing", "", 200)
	want(t, "get by name", got["id"], `"`+id+`"`)
	got = e.call(t, "GET", "/services/"+id, "", 200)
	want(t, "get by id", got["name"], `"billing"`)
	e.call(t, "GET", "/services/nope", "", 404)

	p := e.call(t, "PATCH", "/services/billing", `{"retries":3,"tags":["b"]}`, 200)
	want(t, "patched", []any{p["retries"], p["host"], p["tags"], p["id"]}, `[3,"billing.test",["b"],"`+id+`"]`)
	p = e.call(t, "PATCH", "/services/billing", `{"url":"http://other.test"}`, 200)
	want(t, "patched url", []any{p["host"], p["port"], p["path"]}, `["other.test",80,null]`)
	e.call(t, "PATCH", "/services/nope", `{"retries":3}`, 404)

	put := e.call(t, "PUT", "/services/search", `{"host":"search.test"}`, 200)
	sid := put["id"].(string)
	put = e.call(t, "PUT", "/services/search", `{"host":"s2.test"}`, 200)
	want(t, "put replace", []any{put["id"], put["host"], put["name"]}, `["`+sid+`","s2.test","search"]`)
	diff := e.call(t, "PUT", "/services/search", `{"name":"other","host":"x.test"}`, 400)
	want(t, "put differing name", diff["fields"], `{"name":"cannot be different from the value in the URL"}`)
	byID := e.call(t, "PUT", "/services/0b0c8a5e-4f36-4c39-9d3c-5f3b5e0c1a12", `{"host":"byid.test"}`, 200)
	want(t, "put by id", byID["id"], `"0b0c8a5e-4f36-4c39-9d3c-5f3b5e0c1a12"`)

	l := list(t, e, "/services?size=2")
	if len(l.Data) != 2 || l.Next == nil || !strings.HasPrefix(*l.Next, "/services?offset=") {
		t.Fatalf("GET /services?size=2 = %+v", l)
	}
	l2 := list(t, e, *l.Next)
	if len(l2.Data) != 2 || l2.Next != nil {
		t.Errorf("second page = %+v", l2)
	}
	if got := list(t, e, "/services?tags=x/b"); len(got.Data) != 2 {
		t.Errorf("tags=x/b = %+v", got)
	}

	e.call(t, "DELETE", "/services/search", "", 204)
	e.call(t, "DELETE", "/services/search", "", 204)
	e.call(t, "GET", "/services/search", "", 404)
}

func TestStoreNestedAndReferences(t *testing.T) {
	e := newDBEnv(t, nil)
	svc := e.call(t, "POST", "/services", `{"name":"billing","host":"billing.test"}`, 201)
	e.call(t, "POST", "/services", `{"name":"orders","host":"orders.test"}`, 201)
	route := e.call(t, "POST", "/services/billing/routes", `{"name":"r1","paths":["/b"],"service":{"name":"orders"}}`, 201)
	want(t, "nested route's service", route["service"], `{"id":"`+svc["id"].(string)+`"}`)
	e.call(t, "POST", "/routes", "name=r2&paths=/c&service.name=orders", 201)

	unresolved := e.call(t, "POST", "/routes", `{"paths":["/x"],"service":{"name":"nope"}}`, 400)
	want(t, "unresolved", unresolved, `{"code":13,"name":"foreign keys unresolved",
		"message":"foreign key unresolved (service.name: the foreign key cannot be resolved with '{name=\"nope\"}' for an existing 'services' entity)",
		"fields":{"service":{"name":"nope"}}}`)
	dangling := e.call(t, "POST", "/routes", `{"paths":["/x"],"service":{"id":"0b0c8a5e-4f36-4c39-9d3c-5f3b5e0c1a13"}}`, 400)
	want(t, "dangling", dangling, `{"code":4,"name":"foreign key violation",
		"message":"the foreign key '{id=\"0b0c8a5e-4f36-4c39-9d3c-5f3b5e0c1a13\"}' does not reference an existing 'services' entity.",
		"fields":{"service":{"id":"0b0c8a5e-4f36-4c39-9d3c-5f3b5e0c1a13"}}}`)

	if got := list(t, e, "/services/billing/routes"); got.ids() != route["id"] {
		t.Errorf("GET /services/billing/routes = %s, want %s", got.ids(), route["id"])
	}
	e.call(t, "GET", "/services/billing/routes/r1", "", 200)
	e.call(t, "GET", "/services/orders/routes/r1", "", 404)
	e.call(t, "GET", "/services/nope/routes", "", 404)
	parent := e.call(t, "GET", "/routes/r1/service", "", 200)
	want(t, "route's service", parent["name"], `"billing"`)
	linked := e.call(t, "PATCH", "/routes/r1/service", `{"retries":1}`, 200)
	want(t, "patch through link", []any{linked["name"], linked["retries"]}, `["billing",1]`)
	e.call(t, "DELETE", "/routes/r1/service", "", 405)

	ref := e.call(t, "DELETE", "/services/billing", "", 400)
	want(t, "referenced", ref, `{"code":4,"name":"foreign key violation","message":"an existing 'routes' entity references this 'services' entity","fields":{"@referenced_by":"routes"}}`)
	e.call(t, "DELETE", "/services/orders/routes/r1", "", 404)
	e.call(t, "DELETE", "/services/billing/routes/r1", "", 204)
	e.call(t, "DELETE", "/services/billing", "", 204)
}

func TestStorePlugins(t *testing.T) {
	e := newDBEnv(t, nil)
	e.call(t, "POST", "/services", `{"name":"billing","host":"billing.test"}`, 201)
	p := e.call(t, "POST", "/services/billing/plugins", validPlugin, 201)
	want(t, "plugin", []any{p["name"], p["enabled"], p["protocols"]}, `["datakit",true,["grpc","grpcs","http","https"]]`)
	dup := e.call(t, "POST", "/services/billing/plugins", validPlugin, 409)
	want(t, "duplicate plugin", dup["code"], `5`)

	bad := e.call(t, "POST", "/plugins", `{"name":"datakit","config":{"nodes":[{"name":"A","type":"static","values":{"a":1}}],"debug":"yes","extra":1}}`, 400)
	want(t, "invalid datakit config", bad, invalidDatakitBody)

	patched := e.call(t, "PATCH", "/plugins/"+p["id"].(string), `{"config":{"debug":true},"name":"other"}`, 200)
	cfg := patched["config"].(map[string]any)
	want(t, "merged config", []any{patched["name"], cfg["debug"], cfg["nodes"]},
		`["datakit",true,[{"name":"A","type":"static","values":{"a":1}}]]`)
	if got := list(t, e, "/services/billing/plugins"); got.ids() != p["id"] {
		t.Errorf("GET /services/billing/plugins = %s", got.ids())
	}
	e.call(t, "GET", "/plugins/"+p["id"].(string)+"/service", "", 200)
	e.call(t, "GET", "/plugins/"+p["id"].(string)+"/route", "", 404)
}

func TestStoreConsumersAndTargets(t *testing.T) {
	e := newDBEnv(t, nil)
	e.call(t, "POST", "/consumers", `{"username":"alice","custom_id":"007"}`, 201)
	if got := list(t, e, "/consumers?custom_id=007"); len(got.Data) != 1 {
		t.Errorf("custom_id filter = %+v", got)
	}
	cred := e.call(t, "POST", "/consumers/alice/key-auth", "", 201)
	if k, _ := cred["key"].(string); len(k) != 32 {
		t.Errorf("generated key = %q", cred["key"])
	}
	e.call(t, "GET", "/key-auths/"+cred["key"].(string), "", 200)
	e.call(t, "GET", "/key-auths/"+cred["key"].(string)+"/consumer", "", 200)

	e.call(t, "POST", "/upstreams", `{"name":"backend.internal"}`, 201)
	tg := e.call(t, "POST", "/upstreams/backend.internal/targets", `{"target":"10.0.0.1"}`, 201)
	want(t, "target", tg["target"], `"10.0.0.1:8000"`)
	e.call(t, "GET", "/upstreams/backend.internal/targets/10.0.0.1:8000", "", 200)
	e.call(t, "POST", "/upstreams/backend.internal/targets", `{"target":"10.0.0.1:8000"}`, 409)
	e.call(t, "DELETE", "/upstreams/backend.internal/targets/10.0.0.1:8000", "", 204)
	e.call(t, "GET", "/upstreams/backend.internal/targets/10.0.0.1:8000", "", 404)
	e.call(t, "GET", "/config", "", 400)
}
