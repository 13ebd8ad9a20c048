package admin_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// deckCall is one request decK makes, with the go-kong (or
// go-database-reconciler) function that makes it.
type deckCall struct {
	by     string
	method string
	path   string
	body   string
	status int
	// shape is what the caller unmarshals: "list" ({"data":[…],"next"} with
	// an id per entity, read by go-kong's Client.list), "entity" (an object
	// with an id), "schema" (Kong's record format), "root", "" for none.
	shape string
}

const (
	deckSvcID     = "5b1d9a8e-0b3c-4f0e-9d2a-7c1e6f4a1b01"
	deckRouteID   = "5b1d9a8e-0b3c-4f0e-9d2a-7c1e6f4a1b02"
	deckConsID    = "5b1d9a8e-0b3c-4f0e-9d2a-7c1e6f4a1b03"
	deckKeyID     = "5b1d9a8e-0b3c-4f0e-9d2a-7c1e6f4a1b04"
	deckPluginID  = "5b1d9a8e-0b3c-4f0e-9d2a-7c1e6f4a1b05"
	deckUpID      = "5b1d9a8e-0b3c-4f0e-9d2a-7c1e6f4a1b06"
	deckTargetID  = "5b1d9a8e-0b3c-4f0e-9d2a-7c1e6f4a1b07"
	deckRPluginID = "5b1d9a8e-0b3c-4f0e-9d2a-7c1e6f4a1b08"
)

// deckPing is `deck gateway ping`: cmd's fetchKongVersion calls
// Client.Root, which reads "version" (parsed by ParseKongVersion).
// Without --workspace nothing else is called: for OSS decK never reads
// /workspaces (utils.WorkspaceExists returns true for the default
// workspace without a request).
var deckPing = []deckCall{{by: "Client.Root (fetchKongVersion)", method: "GET", path: "/", status: 200, shape: "root"}}

// deckDump is dump.Get with its default Config (what `deck gateway dump`,
// and `diff`/`sync` to read the current state, run): one List per kind
// with size=1000 (dump.newOpt), the go-kong functions named here.
func deckDump(withUpstream bool) []deckCall {
	calls := []deckCall{
		{by: "Services.List (dump.GetAllServices)", method: "GET", path: "/services?size=1000", status: 200, shape: "list"},
		{by: "Routes.List (dump.GetAllRoutes)", method: "GET", path: "/routes?size=1000", status: 200, shape: "list"},
		{by: "Plugins.List (dump.GetAllPlugins)", method: "GET", path: "/plugins?size=1000", status: 200, shape: "list"},
		{by: "FilterChains.List (dump.GetAllFilterChains)", method: "GET", path: "/filter-chains?size=1000", status: 200, shape: "list"},
		{by: "Certificates.List (dump.GetAllCertificates)", method: "GET", path: "/certificates?size=1000", status: 200, shape: "list"},
		{by: "CACertificates.List (dump.GetAllCACertificates)", method: "GET", path: "/ca_certificates?size=1000", status: 200, shape: "list"},
		{by: "SNIs.List (dump.GetAllSNIs)", method: "GET", path: "/snis?size=1000", status: 200, shape: "list"},
		{by: "Upstreams.List (dump.GetAllUpstreams)", method: "GET", path: "/upstreams?size=1000", status: 200, shape: "list"},
	}
	if withUpstream {
		calls = append(calls, deckCall{by: "Targets.List per upstream (dump.GetAllTargets)", method: "GET",
			path: "/upstreams/" + deckUpID + "/targets?size=1000", status: 200, shape: "list"})
	}
	return append(calls,
		deckCall{by: "Vaults.List (dump.GetAllVaults)", method: "GET", path: "/vaults?size=1000", status: 200, shape: "list"},
		deckCall{by: "Partials.List (dump.GetAllPartials)", method: "GET", path: "/partials?size=1000", status: 200, shape: "list"},
		deckCall{by: "Keys.List (dump.GetAllKeys)", method: "GET", path: "/keys?size=1000", status: 200, shape: "list"},
		deckCall{by: "KeySets.List (dump.GetAllKeySets)", method: "GET", path: "/key-sets?size=1000", status: 200, shape: "list"},
		deckCall{by: "Info.Get (dump.isKongVersion34Plus)", method: "GET", path: "/", status: 200, shape: "root"},
		deckCall{by: "ConsumerGroups.List (dump.GetAllConsumerGroupsDefault)", method: "GET", path: "/consumer_groups?size=1000", status: 200, shape: "list"},
		deckCall{by: "Consumers.List (dump.GetAllConsumers)", method: "GET", path: "/consumers?size=1000", status: 200, shape: "list"},
		deckCall{by: "KeyAuths.List (dump.GetAllKeyAuths)", method: "GET", path: "/key-auths?size=1000", status: 200, shape: "list"},
		deckCall{by: "HMACAuths.List (dump.GetAllHMACAuths)", method: "GET", path: "/hmac-auths?size=1000", status: 200, shape: "list"},
		deckCall{by: "JWTAuths.List (dump.GetAllJWTAuths)", method: "GET", path: "/jwts?size=1000", status: 200, shape: "list"},
		deckCall{by: "BasicAuths.List (dump.GetAllBasicAuths)", method: "GET", path: "/basic-auths?size=1000", status: 200, shape: "list"},
		deckCall{by: "Oauth2Credentials.List (dump.GetAllOauth2Creds)", method: "GET", path: "/oauth2?size=1000", status: 200, shape: "list"},
		deckCall{by: "ACLs.List (dump.GetAllACLGroups)", method: "GET", path: "/acls?size=1000", status: 200, shape: "list"},
		deckCall{by: "MTLSAuths.List (dump.GetAllMTLSAuths)", method: "GET", path: "/mtls-auths?size=1000", status: 200, shape: "list"},
		// Only with --include-licenses / custom entity types, listed so the
		// empty answers stay pinned.
		deckCall{by: "Licenses.List (dump.GetAllLicenses)", method: "GET", path: "/licenses?size=1000", status: 200, shape: "list"},
		deckCall{by: "CustomEntities.List degraphql_routes (dump.GetAllCustomEntitiesWithType)", method: "GET", path: "/degraphql_routes?size=1000", status: 200, shape: "list"},
	)
}

// deckDefaults is file.Get's defaulter (utils.GetDefaulter →
// getKongDefaulterWithClient → Defaulter.getEntitySchema), which fills the
// target state with kong.FillEntityDefaults; a 404 is tolerated and means
// "no defaults" (consumer_group_plugins).
var deckDefaults = []deckCall{
	{by: "Defaulter.getEntitySchema services", method: "GET", path: "/schemas/services", status: 200, shape: "schema"},
	{by: "Defaulter.getEntitySchema routes", method: "GET", path: "/schemas/routes", status: 200, shape: "schema"},
	{by: "Defaulter.getEntitySchema upstreams", method: "GET", path: "/schemas/upstreams", status: 200, shape: "schema"},
	{by: "Defaulter.getEntitySchema targets", method: "GET", path: "/schemas/targets", status: 200, shape: "schema"},
	{by: "Defaulter.getEntitySchema consumer_group_plugins", method: "GET", path: "/schemas/consumer_group_plugins", status: 404},
}

// deckSync are the writes of a first `deck gateway sync` of the kong.yml
// (services, routes, consumers with a key-auth credential, an upstream with
// a target, datakit plugins), in the syncer's order: go-kong's Create
// functions PUT when decK has assigned the id.
var deckSync = []deckCall{
	{by: "KeyAuths.GetByID (keyAuthDiffer.createUpdateKeyAuth duplicate check)", method: "GET", path: "/key-auths/" + deckKeyID, status: 404},
	{by: "Services.Create", method: "PUT", path: "/services/" + deckSvcID, status: 200, shape: "entity",
		body: `{"id":"` + deckSvcID + `","name":"billing","host":"billing.test","port":8080,"path":"/v1","protocol":"http","connect_timeout":60000,"read_timeout":60000,"write_timeout":60000,"retries":5,"enabled":true,"tags":["team-a"]}`},
	{by: "Consumers.Create", method: "PUT", path: "/consumers/" + deckConsID, status: 200, shape: "entity",
		body: `{"id":"` + deckConsID + `","username":"alice","custom_id":"007"}`},
	{by: "Upstreams.Create", method: "PUT", path: "/upstreams/" + deckUpID, status: 200, shape: "entity",
		body: `{"id":"` + deckUpID + `","name":"backend.internal","algorithm":"round-robin","slots":10000,"hash_on":"none","hash_fallback":"none","hash_on_cookie_path":"/","use_srv_name":false,"healthchecks":{"active":{"concurrency":10,"healthy":{"http_statuses":[200,302],"interval":0,"successes":0},"http_path":"/","https_verify_certificate":true,"timeout":1,"type":"http","unhealthy":{"http_failures":0,"http_statuses":[429,404,500,501,502,503,504,505],"interval":0,"tcp_failures":0,"timeouts":0}},"passive":{"healthy":{"http_statuses":[200,201,202,203,204,205,206,207,208,226,300,301,302,303,304,305,306,307,308],"successes":0},"type":"http","unhealthy":{"http_failures":0,"http_statuses":[429,500,503],"tcp_failures":0,"timeouts":0}},"threshold":0}}`},
	{by: "Routes.Create", method: "PUT", path: "/routes/" + deckRouteID, status: 200, shape: "entity",
		body: `{"id":"` + deckRouteID + `","name":"billing-api","paths":["/billing"],"protocols":["http","https"],"https_redirect_status_code":426,"path_handling":"v0","preserve_host":false,"regex_priority":0,"request_buffering":true,"response_buffering":true,"strip_path":true,"service":{"id":"` + deckSvcID + `"}}`},
	{by: "KeyAuths.Create (credentialService.Create)", method: "PUT", path: "/consumers/" + deckConsID + "/key-auth/" + deckKeyID, status: 200, shape: "entity",
		body: `{"id":"` + deckKeyID + `","key":"alice-key","consumer":{"id":"` + deckConsID + `"}}`},
	{by: "Targets.Create", method: "PUT", path: "/upstreams/" + deckUpID + "/targets/" + deckTargetID, status: 200, shape: "entity",
		body: `{"id":"` + deckTargetID + `","target":"10.0.0.1:8080","weight":100}`},
	{by: "Plugins.Create (global)", method: "PUT", path: "/plugins/" + deckPluginID, status: 200, shape: "entity",
		body: `{"id":"` + deckPluginID + `","name":"datakit","config":{"nodes":[{"name":"GREETING","type":"static","values":{"message":"hello"}}]}}`},
	{by: "Plugins.Create (route)", method: "PUT", path: "/plugins/" + deckRPluginID, status: 200, shape: "entity",
		body: `{"id":"` + deckRPluginID + `","name":"datakit","route":{"id":"` + deckRouteID + `"},"config":{"nodes":[{"name":"HI","type":"static","values":{"hi":"there"}}]}}`},
}

// deckDiff is what `deck gateway diff` adds after the dump once the
// entities exist: pluginDiffer.getPluginSchema fetches each configured
// plugin's schema (Plugins.GetFullSchema) to fill defaults before
// comparing.
var deckDiff = []deckCall{
	{by: "Plugins.GetFullSchema (pluginDiffer.getPluginSchema)", method: "GET", path: "/schemas/plugins/datakit", status: 200, shape: "schema"},
	{by: "KeyAuths.GetByID", method: "GET", path: "/key-auths/" + deckKeyID, status: 200, shape: "entity"},
}

// TestDeckCallSequence replays, against the real handler in DB mode over
// SQLite, the calls decK makes for ping, an initial sync (dump of the empty
// gateway, defaults, writes), then dump and diff of the result.
func TestDeckCallSequence(t *testing.T) {
	e := newDBEnv(t, nil)
	var seq []deckCall
	seq = append(seq, deckPing...)
	seq = append(seq, deckDump(false)...)
	seq = append(seq, deckDefaults...)
	seq = append(seq, deckSync...)
	seq = append(seq, deckDump(true)...)
	seq = append(seq, deckDefaults...)
	seq = append(seq, deckDiff...)
	for i, c := range seq {
		h := map[string]string{}
		if c.body != "" {
			h["Content-Type"] = "application/json"
		}
		w := e.do(t, req{method: c.method, path: c.path, body: c.body, header: h})
		if w.Code != c.status {
			t.Fatalf("#%d %s: %s %s = %d %s, want %d", i, c.by, c.method, c.path, w.Code, w.Body, c.status)
		}
		checkShape(t, c, w.Body.Bytes())
	}

	// The dump after the sync finds what was written, with the defaults
	// the schemas announced.
	counts := map[string]int{"/services": 1, "/routes": 1, "/consumers": 1, "/key-auths": 1, "/plugins": 2,
		"/upstreams": 1, "/upstreams/" + deckUpID + "/targets": 1, "/ca_certificates": 0, "/consumer_groups": 0}
	for path, n := range counts {
		var page struct{ Data []json.RawMessage }
		if err := json.Unmarshal(e.do(t, req{path: path + "?size=1000"}).Body.Bytes(), &page); err != nil || len(page.Data) != n {
			t.Errorf("GET %s: %d entities (%v), want %d", path, len(page.Data), err, n)
		}
	}
}

func checkShape(t *testing.T, c deckCall, body []byte) {
	t.Helper()
	var v map[string]any
	if c.shape != "" {
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%s: %s %s: body %q: %v", c.by, c.method, c.path, body, err)
		}
	}
	switch c.shape {
	case "root":
		// go-kong's Info and ParseKongVersion read these.
		version, _ := v["version"].(string)
		conf, _ := v["configuration"].(map[string]any)
		if !strings.HasPrefix(version, "3.") || conf == nil {
			t.Errorf("%s: GET / version %q configuration %v", c.by, version, conf != nil)
		}
		if _, ok := conf["database"].(string); !ok {
			t.Errorf("%s: configuration.database = %v, want a string", c.by, conf["database"])
		}
	case "list":
		data, ok := v["data"].([]any)
		next, hasNext := v["next"]
		if !ok || !hasNext || (next != nil && v["offset"] == nil) {
			t.Errorf("%s: %s = %s, want {data:[…],next:…}", c.by, c.path, body)
		}
		for _, d := range data {
			if m, _ := d.(map[string]any); m == nil || m["id"] == nil {
				t.Errorf("%s: entity without id: %v", c.by, d)
			}
		}
	case "entity":
		if id, _ := v["id"].(string); id == "" {
			t.Errorf("%s: %s %s = %s, want an entity", c.by, c.method, c.path, body)
		}
		if strings.HasSuffix(c.path, "/"+deckSvcID) && c.method == "PUT" && v["name"] != "billing" {
			t.Errorf("%s: %s", c.by, body)
		}
	case "schema":
		fields, ok := v["fields"].([]any)
		if !ok || len(fields) == 0 {
			t.Errorf("%s: %s = %s, want {fields:[…]}", c.by, c.path, body)
		}
		for _, f := range fields {
			if m, _ := f.(map[string]any); len(m) != 1 {
				t.Errorf("%s: field %v is not a one-key record", c.by, f)
			}
		}
	}
}

// TestDeckUnimplementedKinds pins the empty listings of kinds decK lists
// but datakit does not implement, in both modes; their item paths are 404
// and writes 405.
func TestDeckUnimplementedKinds(t *testing.T) {
	kinds := []string{"acls", "basic-auths", "ca_certificates", "consumer_groups", "custom-entities",
		"degraphql_routes", "filter-chains", "hmac-auths", "jwts", "key-sets", "keys", "licenses",
		"mtls-auths", "oauth2", "partials", "vaults"}
	for _, mode := range []string{"off", "sqlite"} {
		e := newEnv(t, "", nil)
		if mode == "sqlite" {
			e = newDBEnv(t, nil)
		}
		for _, k := range kinds {
			run(t, e, []behaviour{
				{name: mode + " " + k, req: req{path: "/" + k + "?size=1000&tags=a"}, status: 200, body: `{"data":[],"next":null}`},
				{name: mode + " " + k + " item", req: req{path: "/" + k + "/x"}, status: 404},
				{name: mode + " " + k + " write", req: req{method: "POST", path: "/" + k}, status: 405},
			})
		}
	}
}
