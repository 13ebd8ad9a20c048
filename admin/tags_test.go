package admin_test

import (
	"encoding/json"
	"net/url"
	"testing"
)

// TestTags checks /tags and /tags/{tag} in DB-less mode (snapshot) and in
// sqlite mode (store), over the same entities.
func TestTags(t *testing.T) {
	doc := readFile(t, "testdata/kong.yml")
	for _, mode := range []string{"off", "sqlite"} {
		t.Run(mode, func(t *testing.T) {
			var e *env
			if mode == "off" {
				e = newEnv(t, doc, nil)
			} else {
				e = newDBEnv(t, nil)
				svc := e.call(t, "POST", "/services", `{"name":"billing","host":"b.test","tags":["team-a","prod"]}`, 201)
				e.call(t, "POST", "/services", `{"name":"orders","host":"o.test","tags":["team-b"]}`, 201)
				e.call(t, "POST", "/routes", `{"name":"billing-api","paths":["/billing"],"tags":["team-a"],"service":{"id":"`+svc["id"].(string)+`"}}`, 201)
				e.call(t, "POST", "/consumers", `{"username":"bob"}`, 201)
			}
			all := tagPages(t, e, "/tags?size=2")
			if len(all) != 4 {
				t.Fatalf("GET /tags: %d rows %v, want 4", len(all), all)
			}
			wantOrder := []string{"prod services", "team-a routes", "team-a services", "team-b services"}
			for i, r := range all {
				if got := r.Tag + " " + r.EntityName; got != wantOrder[i] || r.EntityID == "" {
					t.Errorf("row %d = %+v, want %s", i, r, wantOrder[i])
				}
			}
			one := tagPages(t, e, "/tags/team-a")
			if len(one) != 2 || one[0].EntityName != "routes" || one[1].EntityName != "services" {
				t.Errorf("GET /tags/team-a = %+v", one)
			}
			run(t, e, []behaviour{
				{name: "unknown tag", req: req{path: "/tags/nope"}, status: 200, body: `{"data":[],"next":null}`},
				{name: "bad size", req: req{path: "/tags?size=0"}, status: 400},
				{name: "bad offset", req: req{path: "/tags?offset=%25%25"}, status: 400,
					body: `{"code":7,"name":"invalid offset","message":"'%%' is not a valid offset: bad base64 encoding"}`},
			})
		})
	}
}

type tagRowT struct {
	EntityName string `json:"entity_name"`
	EntityID   string `json:"entity_id"`
	Tag        string `json:"tag"`
}

// tagPages follows next links from path and returns every row.
func tagPages(t *testing.T, e *env, path string) []tagRowT {
	t.Helper()
	var rows []tagRowT
	for path != "" {
		w := e.do(t, req{path: path})
		if w.Code != 200 {
			t.Fatalf("GET %s = %d %s", path, w.Code, w.Body)
		}
		var page struct {
			Data []tagRowT
			Next *string
		}
		if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, page.Data...)
		path = ""
		if page.Next != nil {
			if _, err := url.Parse(*page.Next); err != nil {
				t.Fatal(err)
			}
			path = *page.Next
		}
	}
	return rows
}
