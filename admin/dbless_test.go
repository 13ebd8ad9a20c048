package admin_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/datakit-gateway/datakit/admin"
)

// Deterministic ids of testdata/kong.yml (§5.3).
const (
	billingID  = "aa93ac78-2b4d-59d0-9897-62a161ae6928"
	ordersID   = "580c8aca-d632-5804-b307-a24326e1e2d5"
	searchID   = "a00245d4-2da7-5177-ad2f-94ce71240149"
	billingAPI = "184fce19-d039-5a34-ab1b-9c6fdf2d2686"
	aliceID    = "b32379d9-3d28-5683-a79c-72139be6e34f"
	helloID    = "26023deb-a880-55eb-b744-ecce26607229"
)

// listed is a list response.
type listed struct {
	Data []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"data"`
	Next   *string `json:"next"`
	Offset string  `json:"offset"`
}

func (l listed) ids() string {
	var s []string
	for _, d := range l.Data {
		s = append(s, d.ID)
	}
	return strings.Join(s, ",")
}

func list(t *testing.T, e *env, path string) listed {
	t.Helper()
	w := e.do(t, req{path: path})
	if w.Code != 200 {
		t.Fatalf("GET %s = %d %s", path, w.Code, w.Body)
	}
	var l listed
	if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return l
}

func TestDBLessLists(t *testing.T) {
	e := newEnv(t, readFile(t, "testdata/kong.yml"), nil)
	tests := []struct {
		path string
		ids  string
		next bool
	}{
		{"/services", ordersID + "," + searchID + "," + billingID, false},
		{"/services?size=2", ordersID + "," + searchID, true},
		{"/services?size=3", ordersID + "," + searchID + "," + billingID, false},
		{"/services?tags=team-a", billingID, false},
		{"/services?tags=team-a,prod", billingID, false},
		{"/services?tags=team-a,team-b", "", false},
		{"/services?tags=team-a/team-b", ordersID + "," + billingID, false},
		{"/services?tags=team-a/team-b&size=1", ordersID, true},
		{"/services?unknown=1", ordersID + "," + searchID + "," + billingID, false},
		{"/services/billing/routes", billingAPI, false},
		{"/services/" + billingID + "/routes", billingAPI, false},
		{"/services/billing/routes?tags=team-b", "", false},
		{"/services/search/routes", "", false},
		{"/services/billing/plugins", helloID, false},
		{"/plugins", helloID, false},
		{"/consumers?custom_id=007", aliceID, false},
		{"/consumers?custom_id=008", "", false},
		{"/key-auths", "", false},
		{"/consumers/alice/key-auth", "", false},
		{"/consumers/alice/plugins", "", false},
		{"/certificates", "", false},
		{"/snis", "", false},
		{"/upstreams/backend.internal/targets?size=1", "59069be7-e39b-5956-b546-65177b977f9e", true},
	}
	for _, tc := range tests {
		l := list(t, e, tc.path)
		if got := l.ids(); got != tc.ids || (l.Next != nil) != tc.next {
			t.Errorf("GET %s = ids %q next %v, want %q next %v", tc.path, got, l.Next, tc.ids, tc.next)
		}
	}
}

func TestDBLessPagination(t *testing.T) {
	e := newEnv(t, readFile(t, "testdata/kong.yml"), nil)
	var got []string
	path := "/services?size=1&tags=team-a/team-b/prod"
	for range 5 {
		l := list(t, e, path)
		for _, d := range l.Data {
			got = append(got, d.Name)
		}
		if l.Next == nil {
			break
		}
		u, err := url.Parse(*l.Next)
		if err != nil || u.Path != "/services" || u.Query().Get("size") != "1" ||
			u.Query().Get("tags") != "team-a/team-b/prod" || u.Query().Get("offset") != l.Offset {
			t.Fatalf("next = %q (offset %q), want /services?offset=…&tags=…&size=1", *l.Next, l.Offset)
		}
		path = *l.Next
	}
	if strings.Join(got, ",") != "orders,billing" {
		t.Errorf("pages = %v, want orders,billing", got)
	}
	l := list(t, e, "/upstreams/backend.internal/targets?size=1")
	if !strings.HasPrefix(*l.Next, "/upstreams/backend.internal/targets?offset=") {
		t.Errorf("nested next = %q", *l.Next)
	}
	l = list(t, e, *l.Next)
	if l.ids() != "f1f5f137-d024-5024-a71d-e78230764bc0" || l.Next != nil {
		t.Errorf("second page = %q, %v", l.ids(), l.Next)
	}
}

func TestDBLessReads(t *testing.T) {
	e := newEnv(t, readFile(t, "testdata/kong.yml"), nil)
	bad := func(code int, name, msg string, extra string) string {
		return `{"code":` + itoa(code) + `,"name":"` + name + `","message":"` + msg + `"` + extra + `}`
	}
	run(t, e, []behaviour{
		{name: "by key", req: req{path: "/services/billing"}, status: 200},
		{name: "by id", req: req{path: "/services/" + billingID}, status: 200},
		{name: "by upper-case id", req: req{path: "/services/" + strings.ToUpper(billingID)}, status: 200},
		{name: "missing", req: req{path: "/services/nope"}, status: 404, body: notFound},
		{name: "missing id", req: req{path: "/services/00000000-0000-0000-0000-000000000000"}, status: 404, body: notFound},
		{name: "percent-encoded key", req: req{path: "/upstreams/backend%2Einternal"}, status: 200},
		{name: "nested child", req: req{path: "/services/billing/routes/billing-api"}, status: 200},
		{name: "nested other parent's child", req: req{path: "/services/orders/routes/billing-api"}, status: 404, body: notFound},
		{name: "nested missing parent", req: req{path: "/services/nope/routes"}, status: 404, body: notFound},
		{name: "parent link", req: req{path: "/routes/billing-api/service"}, status: 200},
		{name: "null parent link", req: req{path: "/plugins/hello/route"}, status: 404, body: notFound},
		{name: "plugin parent link", req: req{path: "/plugins/hello/service"}, status: 200},
		{name: "plugin by instance name", req: req{path: "/plugins/hello"}, status: 200},
		{name: "consumer by username", req: req{path: "/consumers/alice"}, status: 200},
		{name: "target by address", req: req{path: "/upstreams/backend.internal/targets/10.0.0.2:8000"}, status: 200},
		{name: "target of unknown upstream", req: req{path: "/upstreams/nope/targets/10.0.0.2:8000"}, status: 404},
		{name: "empty listing", req: req{path: "/basic-auths"}, status: 200, body: `{"data":[],"next":null}`},
		{name: "empty listing ca_certificates", req: req{path: "/ca_certificates"}, status: 200, body: `{"data":[],"next":null}`},
		{name: "empty listing item", req: req{path: "/basic-auths/x"}, status: 404, body: notFound},
		{name: "empty listing write", req: req{method: http.MethodPost, path: "/acls"}, status: 405, body: notAllowed},
		{name: "size not a number", req: req{path: "/services?size=abc"}, status: 400, body: bad(9, "invalid size", "size must be a number", "")},
		{name: "size zero", req: req{path: "/services?size=0"}, status: 400,
			body: bad(9, "invalid size", "size must be an integer between 1 and 1000", "")},
		{name: "size too big", req: req{path: "/routes?size=1001"}, status: 400,
			body: bad(9, "invalid size", "size must be an integer between 1 and 1000", "")},
		{name: "bad offset", req: req{path: "/services?offset=!!"}, status: 400,
			body: bad(7, "invalid offset", "'!!' is not a valid offset: bad base64 encoding", "")},
		{name: "mixed tags", req: req{path: "/services?tags=a,b/c"}, status: 400,
			body: bad(11, "invalid options", "invalid option (tags: invalid filter syntax)", `,"options":{"tags":"invalid filter syntax"}`)},
		{name: "six tags", req: req{path: "/services?tags=a,b,c,d,e,f"}, status: 400,
			body: bad(11, "invalid options", "invalid option (tags: cannot query more than 5 tags)", `,"options":{"tags":"cannot query more than 5 tags"}`)},
		{name: "null tags", req: req{path: "/services?tags="}, status: 400,
			body: bad(11, "invalid options", "invalid option (tags: cannot be null)", `,"options":{"tags":"cannot be null"}`)},
		{name: "nested tags error", req: req{path: "/services/billing/routes?tags=a,,b"}, status: 400},
	})
}

func TestDBLessWrites(t *testing.T) {
	e := newEnv(t, readFile(t, "testdata/kong.yml"), nil)
	unsupported := func(msg string) string {
		return `{"code":12,"name":"operation unsupported","message":"` + msg + `"}`
	}
	j := map[string]string{"Content-Type": jsonType}
	run(t, e, []behaviour{
		{name: "post", req: req{method: http.MethodPost, path: "/services", body: `{"host":"x.test"}`, header: j}, status: 405,
			body: unsupported("cannot create 'services' entities when not using a database")},
		{name: "put", req: req{method: http.MethodPut, path: "/services/billing", body: `{"host":"x.test"}`, header: j}, status: 405,
			body: unsupported("cannot create or update 'services' entities when not using a database")},
		{name: "patch", req: req{method: http.MethodPatch, path: "/routes/billing-api", body: `{}`, header: j}, status: 405,
			body: unsupported("cannot update 'routes' entities when not using a database")},
		{name: "delete", req: req{method: http.MethodDelete, path: "/consumers/nobody"}, status: 405,
			body: unsupported("cannot remove 'consumers' entities when not using a database")},
		{name: "nested post", req: req{method: http.MethodPost, path: "/services/billing/routes"}, status: 405,
			body: unsupported("cannot create 'routes' entities when not using a database")},
		{name: "credential post", req: req{method: http.MethodPost, path: "/consumers/alice/key-auth"}, status: 405,
			body: unsupported("cannot create 'keyauth_credentials' entities when not using a database")},
		{name: "target delete", req: req{method: http.MethodDelete, path: "/upstreams/backend.internal/targets/10.0.0.2:8000"}, status: 405,
			body: unsupported("cannot remove 'targets' entities when not using a database")},
		{name: "link put", req: req{method: http.MethodPut, path: "/routes/billing-api/service", body: `{}`, header: j}, status: 405,
			body: unsupported("cannot create or update 'services' entities when not using a database")},
		{name: "link delete", req: req{method: http.MethodDelete, path: "/routes/billing-api/service"}, status: 405, body: notAllowed},
		{name: "undefined method", req: req{method: http.MethodPut, path: "/services"}, status: 405, body: notAllowed},
	})
	if got := list(t, e, "/services").ids(); got != ordersID+","+searchID+","+billingID {
		t.Errorf("services after refused writes = %s", got)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// configState is what must not change when a POST /config fails.
func configState(t *testing.T, e *env) string {
	t.Helper()
	return e.do(t, req{path: "/config"}).Body.String() + e.do(t, req{path: "/status"}).Body.String()
}

func TestConfigRoundTrip(t *testing.T) {
	src := newEnv(t, readFile(t, "testdata/kong.yml"), nil)
	w := src.do(t, req{path: "/config"})
	var got struct{ Config string }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
		t.Fatalf("GET /config = %d %s", w.Code, w.Body)
	}
	if !strings.HasPrefix(got.Config, "_format_version: \"3.0\"\n_transform: false\n") {
		t.Errorf("GET /config = %q", got.Config)
	}

	dst := newEnv(t, "", nil)
	w = dst.do(t, req{method: http.MethodPost, path: "/config", body: got.Config, header: map[string]string{"Content-Type": "application/yaml"}})
	if w.Code != 201 {
		t.Fatalf("POST /config = %d %s", w.Code, w.Body)
	}
	var flat map[string]map[string]map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &flat); err != nil {
		t.Fatal(err)
	}
	if flat["services"][billingID]["name"] != "billing" || len(flat["services"]) != 3 || len(flat["targets"]) != 2 ||
		flat["plugins"][helloID]["instance_name"] != "hello" {
		t.Errorf("POST /config = %s", w.Body)
	}
	if _, ok := flat["certificates"]; ok {
		t.Errorf("POST /config lists an empty collection: %s", w.Body)
	}
	// updated_at is always the server's (§3.1): compare the rest.
	if a, b := withoutUpdatedAt(src.do(t, req{path: "/config"}).Body.String()), withoutUpdatedAt(dst.do(t, req{path: "/config"}).Body.String()); a != b {
		t.Errorf("GET /config after round trip =\n%s\nwant\n%s", b, a)
	}
}

func TestConfigBodies(t *testing.T) {
	doc := "_format_version: \"3.0\"\nservices:\n  - name: s1\n    host: s1.test\n"
	jsonDoc := `{"_format_version":"3.0","services":[{"name":"s1","host":"s1.test"}]}`
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("config", "kong.yml")
	_, _ = fw.Write([]byte(doc))
	_ = mw.Close()
	tests := []struct {
		name, ct, body string
	}{
		{"yaml", "application/yaml", doc},
		{"json document", jsonType, jsonDoc},
		{"json config field", jsonType, mustJSON(t, map[string]string{"config": doc})},
		{"json config field holding json", jsonType, mustJSON(t, map[string]string{"config": jsonDoc})},
		{"form", formType, "config=" + url.QueryEscape(doc)},
		{"multipart file", mw.FormDataContentType(), mp.String()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "", nil)
			w := e.do(t, req{method: http.MethodPost, path: "/config", body: tc.body, header: map[string]string{"Content-Type": tc.ct}})
			if w.Code != 201 || !strings.Contains(w.Body.String(), `"name":"s1"`) {
				t.Fatalf("POST /config = %d %s, want 201", w.Code, w.Body)
			}
			if got := list(t, e, "/services"); len(got.Data) != 1 || got.Data[0].Name != "s1" {
				t.Errorf("GET /services after POST /config = %+v", got)
			}
		})
	}

	// A JSON document's hash does not depend on its formatting.
	e := newEnv(t, "", nil)
	if w := e.do(t, req{method: http.MethodPost, path: "/config", body: jsonDoc, header: map[string]string{"Content-Type": jsonType}}); w.Code != 201 {
		t.Fatalf("POST /config = %d", w.Code)
	}
	spaced := `{ "services": [ {"host": "s1.test", "name": "s1"} ], "_format_version": "3.0" }`
	if w := e.do(t, req{method: http.MethodPost, path: "/config?check_hash=yes", body: spaced, header: map[string]string{"Content-Type": jsonType}}); w.Code != 304 {
		t.Errorf("POST /config?check_hash=yes reformatted JSON = %d, want 304", w.Code)
	}
}

func TestConfigErrors(t *testing.T) {
	e := newEnv(t, readFile(t, "testdata/kong.yml"), nil)
	before := configState(t, e)
	y := map[string]string{"Content-Type": "application/yaml"}
	invalid := "_format_version: \"3.0\"\nservices:\n  - name: a\n    host: a.test\n    plugins:\n      - name: datakit\n" +
		"        config: {nodes: [{name: A, type: static, values: {a: 1}}], debug: 1, extra: true}\n  - name: b\n"
	tree := `{"services":{"1":{"plugins":{"1":{"config":["debug: expected boolean, got number","extra: unknown field"]}}},"2":{"host":"required field missing"}}}`
	run(t, e, []behaviour{
		{name: "invalid document", req: req{method: http.MethodPost, path: "/config", body: invalid, header: y}, status: 400,
			body: `{"code":14,"name":"invalid declarative configuration","message":` + mustJSON(t, "declarative config is invalid: "+tree) +
				`,"fields":` + tree + `}`},
		{name: "invalid document flattened", req: req{method: http.MethodPost, path: "/config?flatten_errors=on", body: invalid, header: y}, status: 400,
			body: `{"code":14,"name":"invalid declarative configuration","message":` + mustJSON(t, "declarative config is invalid: "+tree) +
				`,"fields":` + tree + `,"flattened_errors":[
				{"entity_type":"plugin","entity_name":"datakit","entity_id":"8f869615-de5b-50c4-a251-8577a1fbbf50",
				 "entity":{"config":{"debug":1,"extra":true,"nodes":[{"name":"A","type":"static","values":{"a":1}}]},"name":"datakit","service":{"id":"72734e2a-702d-5711-b9ef-697178108ad8"}},
				 "errors":[{"type":"field","field":"config","message":"debug: expected boolean, got number"},{"type":"field","field":"config","message":"extra: unknown field"}]},
				{"entity_type":"service","entity_name":"b","entity_id":"e5f4d1ca-89cf-5899-a4d1-8793e8d1e98a","entity":{"name":"b"},
				 "errors":[{"type":"field","field":"host","message":"required field missing"}]}]}`},
		{name: "format version only in fields", req: req{method: http.MethodPost, path: "/config?flatten_errors=1", body: "_format_version: \"9\"\n", header: y},
			status: 400, body: `{"code":14,"name":"invalid declarative configuration",
			"message":"declarative config is invalid: {\"_format_version\":\"expected one of: 1.1, 2.1, 3.0\"}",
			"fields":{"_format_version":"expected one of: 1.1, 2.1, 3.0"},"flattened_errors":[]}`},
		{name: "unparsable", req: req{method: http.MethodPost, path: "/config", body: "services: [", header: y}, status: 400,
			body: `{"code":14,"name":"invalid declarative configuration","message":"failed parsing declarative configuration: yaml: line 1: did not find expected node content","fields":{}}`},
		{name: "no document", req: req{method: http.MethodPost, path: "/config", body: `{"services":[]}`, header: map[string]string{"Content-Type": jsonType}},
			status: 400, body: `{"message":"expected a declarative configuration"}`},
		{name: "empty body", req: req{method: http.MethodPost, path: "/config"}, status: 400, body: `{"message":"expected a declarative configuration"}`},
		{name: "form without config", req: req{method: http.MethodPost, path: "/config", body: "x=1", header: map[string]string{"Content-Type": formType}},
			status: 400, body: `{"message":"expected a declarative configuration"}`},
		{name: "bad json", req: req{method: http.MethodPost, path: "/config", body: `{`, header: map[string]string{"Content-Type": jsonType}},
			status: 400, body: `{"message":"Cannot parse JSON body"}`},
		{name: "other type", req: req{method: http.MethodPost, path: "/config", body: `x`, header: map[string]string{"Content-Type": "text/plain"}},
			status: 415, body: "-"},
		{name: "undefined method", req: req{method: http.MethodDelete, path: "/config"}, status: 405, body: notAllowed},
	})
	if after := configState(t, e); after != before {
		t.Errorf("configuration changed by failed POST /config:\n%s\nwas\n%s", after, before)
	}
}

func TestConfigConcurrentPost(t *testing.T) {
	e := newEnv(t, "", nil)
	block := make(chan struct{})
	e.node.block = block
	doc := "_format_version: \"3.0\"\nservices:\n  - name: s1\n    host: s1.test\n"
	y := map[string]string{"Content-Type": "application/yaml"}
	var wg sync.WaitGroup
	wg.Add(1)
	started := make(chan struct{})
	e.node.started = started
	go func() {
		defer wg.Done()
		if w := e.do(t, req{method: http.MethodPost, path: "/config", body: doc, header: y}); w.Code != 201 {
			t.Errorf("first POST /config = %d %s", w.Code, w.Body)
		}
	}()
	<-started
	w := e.do(t, req{method: http.MethodPost, path: "/config", body: doc, header: y})
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" ||
		!jsonEqual(t, w.Body.String(), `{"message":"Currently loading previous configuration"}`) {
		t.Errorf("concurrent POST /config = %d %s (Retry-After %q)", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	close(block)
	wg.Wait()
}

func TestConfigInDBMode(t *testing.T) {
	e := newEnv(t, "", func(o *admin.Options) { o.Database = "postgres" })
	body := `{"message":"this endpoint is only available when datakit is configured to not use a database"}`
	run(t, e, []behaviour{
		{name: "get", req: req{path: "/config"}, status: 400, body: body},
		{name: "post", req: req{method: http.MethodPost, path: "/config", body: "_format_version: \"3.0\"", header: map[string]string{"Content-Type": "text/yaml"}},
			status: 400, body: body},
	})
}

// withoutUpdatedAt drops the updated_at lines of a GET /config body.
func withoutUpdatedAt(body string) string {
	var got struct{ Config string }
	_ = json.Unmarshal([]byte(body), &got)
	var keep []string
	for _, l := range strings.Split(got.Config, "\n") {
		if !strings.Contains(l, "updated_at:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
