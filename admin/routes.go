package admin

import (
	"encoding/json"
	"net/http"
)

// routes registers every path of §4.3 that this node serves.
func (a *api) routes(t *table) {
	t.handle("/", methods{http.MethodGet: a.root})
	t.handle("/status", methods{http.MethodGet: a.status})
	t.handle("/status/ready", methods{http.MethodGet: a.ready})
	t.handle("/endpoints", methods{http.MethodGet: a.listEndpoints})
	t.handle("/plugins/enabled", methods{http.MethodGet: a.enabledPlugins})
	t.handle("/schemas/plugins/validate", methods{http.MethodPost: a.validatePlugin})
	t.handle("/schemas/plugins/{name}", methods{http.MethodGet: a.pluginSchema})
	t.handle("/schemas/{entity}", methods{http.MethodGet: a.entitySchemaHandler})
	t.handle("/schemas/{entity}/validate", methods{http.MethodPost: a.validateEntity})
	t.handle("/tags", methods{http.MethodGet: a.tags})
	t.handle("/tags/{tag}", methods{http.MethodGet: a.tags})
	t.handle("/config", methods{http.MethodGet: a.getConfig, http.MethodPost: a.postConfig})
	if a.opts.Metrics != nil {
		t.handle("/metrics", methods{http.MethodGet: a.opts.Metrics.ServeHTTP})
	}

	for _, c := range collections {
		if c.nestedOnly {
			continue
		}
		s := scope{c: c}
		item := "/" + c.path + "/{" + c.entity + "}"
		t.handle("/"+c.path, methods{http.MethodGet: a.list(s), http.MethodPost: a.writeHandler(s, http.MethodPost)})
		t.handle(item, methods{http.MethodGet: a.get(s), http.MethodPut: a.writeHandler(s, http.MethodPut),
			http.MethodPatch: a.writeHandler(s, http.MethodPatch), http.MethodDelete: a.writeHandler(s, http.MethodDelete)})
		for _, field := range c.links {
			parent := linkTargets[field]
			t.handle(item+"/"+field, methods{http.MethodGet: a.link(c, field),
				http.MethodPut: a.linkWrite(c, field, parent), http.MethodPatch: a.linkWrite(c, field, parent)})
		}
	}
	for i := range nestings {
		n := &nestings[i]
		s := scope{c: n.child, n: n}
		base := "/" + n.parent.path + "/{" + n.parent.entity + "}/" + n.path
		t.handle(base, methods{http.MethodGet: a.list(s), http.MethodPost: a.writeHandler(s, http.MethodPost)})
		t.handle(base+"/{"+n.child.entity+"}", methods{http.MethodGet: a.get(s), http.MethodPut: a.writeHandler(s, http.MethodPut),
			http.MethodPatch: a.writeHandler(s, http.MethodPatch), http.MethodDelete: a.writeHandler(s, http.MethodDelete)})
	}
	t.handle("/plugins/{plugins}/graph", methods{http.MethodGet: a.pluginGraph})
	t.handle("/plugins/{plugins}/graph/run", methods{http.MethodPost: a.runPluginGraph})
	// protect serves the viewer's exact paths; this catches the rest
	// ("/graph//", other methods) once the trailing slash is trimmed.
	t.handle("/graph", methods{http.MethodGet: a.viewer.ServeHTTP})
	for _, p := range emptyListings {
		t.handle("/"+p, methods{http.MethodGet: a.emptyList})
	}
}

// emptyList answers the listings of kinds datakit does not implement.
func (a *api) emptyList(w http.ResponseWriter, r *http.Request) {
	if _, err := parseListQuery(r); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, listBody{Data: []json.RawMessage{}})
}

// The handlers below pick the snapshot (database = off) or the store.

func (a *api) list(s scope) http.HandlerFunc {
	if a.dbless {
		return a.snapshotList(s)
	}
	if a.opts.Store == nil {
		return a.noStore
	}
	return a.storeList(s)
}

func (a *api) get(s scope) http.HandlerFunc {
	if a.dbless {
		return a.snapshotGet(s)
	}
	if a.opts.Store == nil {
		return a.noStore
	}
	return a.storeGet(s)
}

func (a *api) link(c *collection, field string) http.HandlerFunc {
	if a.dbless {
		return a.snapshotLink(c, field)
	}
	if a.opts.Store == nil {
		return a.noStore
	}
	return a.storeLink(c, field)
}

// writeHandler serves one write method of a collection or nested collection:
// refused in DB-less mode, through the store otherwise.
func (a *api) writeHandler(s scope, method string) http.HandlerFunc {
	if a.dbless {
		return a.readOnly(s.c.entity)
	}
	if a.opts.Store == nil {
		return a.noStore
	}
	return a.storeWrite(s, method)
}

func (a *api) linkWrite(c *collection, field string, parent *collection) http.HandlerFunc {
	if a.dbless {
		return a.readOnly(parent.entity)
	}
	if a.opts.Store == nil {
		return a.noStore
	}
	return a.storeLinkWrite(c, field, parent)
}

// noStore answers in a DB mode without a datastore.
func (a *api) noStore(w http.ResponseWriter, r *http.Request) { a.fail(w, r, errDatabaseUnreachable) }
