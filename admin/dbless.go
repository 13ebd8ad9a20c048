package admin

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// param returns a path parameter percent-decoded (§4.2). chi matches on
// the escaped path when the request has one, so its values may still hold
// escapes.
func param(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if r.URL.RawPath == "" {
		return v
	}
	if d, err := url.PathUnescape(v); err == nil {
		return d
	}
	return v
}

// active returns the entities of the running snapshot, never nil.
func (a *api) active() *config.Entities {
	if e, _ := a.opts.Node.Active(); e != nil {
		return e
	}
	return &config.Entities{}
}

// scope is where an entity is looked up: a whole collection, or the
// children of one parent.
type scope struct {
	c *collection
	n *nesting // nil at top level
}

// snapshotItems resolves the scope against the snapshot: the candidate
// items and whether the parent exists.
func (s scope) snapshotItems(r *http.Request, ents *config.Entities) ([]item, bool) {
	items := s.c.items(ents)
	if s.n == nil {
		return items, true
	}
	parent, ok := s.n.parent.find(s.n.parent.items(ents), param(r, s.n.parent.entity))
	if !ok {
		return nil, false
	}
	out := items[:0:0]
	for _, it := range items {
		if it.refs[s.n.field] == parent.id {
			out = append(out, it)
		}
	}
	return out, true
}

// snapshotList serves GET of a collection from the snapshot.
func (a *api) snapshotList(s scope) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lq, err := parseListQuery(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		items, ok := s.snapshotItems(r, a.active())
		if !ok {
			a.fail(w, r, errNotFound)
			return
		}
		keep := func(item) bool { return true }
		if q := r.URL.Query(); s.c == consumers && q.Has("custom_id") {
			cid := q.Get("custom_id")
			keep = func(it item) bool { return it.customID != nil && *it.customID == cid }
		}
		data, next, err := lq.paginate(items, keep)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, r, http.StatusOK, lq.page(r, data, next))
	}
}

// snapshotGet serves GET of one entity from the snapshot.
func (a *api) snapshotGet(s scope) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		items, ok := s.snapshotItems(r, a.active())
		if !ok {
			a.fail(w, r, errNotFound)
			return
		}
		it, ok := s.c.find(items, param(r, s.c.entity))
		if !ok {
			a.fail(w, r, errNotFound)
			return
		}
		writeJSON(w, r, http.StatusOK, it.value)
	}
}

// snapshotLink serves GET /es/{e}/{field}: the entity's parent.
func (a *api) snapshotLink(c *collection, field string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ents := a.active()
		it, ok := c.find(c.items(ents), param(r, c.entity))
		if !ok || it.refs[field] == "" {
			a.fail(w, r, errNotFound)
			return
		}
		pc := linkTargets[field]
		parent, ok := pc.find(pc.items(ents), it.refs[field])
		if !ok {
			a.fail(w, r, errNotFound)
			return
		}
		writeJSON(w, r, http.StatusOK, parent.value)
	}
}

// readOnly answers an entity write without a database (§4.10).
func (a *api) readOnly(entity string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, unsupported(r.Method, entity))
	}
}

// getConfig serves GET /config: the running configuration as a "3.0"
// declarative document (§4.8).
func (a *api) getConfig(w http.ResponseWriter, r *http.Request) {
	if !a.dbless {
		a.fail(w, r, errConfigNeedsDBLess)
		return
	}
	doc, err := config.Export(a.active())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]string{"config": string(doc)})
}

// postConfig serves POST /config: an atomic replacement of the whole
// configuration (§4.8).
func (a *api) postConfig(w http.ResponseWriter, r *http.Request) {
	if !a.dbless {
		a.fail(w, r, errConfigNeedsDBLess)
		return
	}
	text, err := declarativeText(bodyOf(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !a.loading.TryLock() {
		a.fail(w, r, errLoading)
		return
	}
	defer a.loading.Unlock()
	if queryFlag(r, "check_hash") {
		if _, hash := a.opts.Node.Active(); hash != "" && hash == textHash(text) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if err := a.opts.Node.LoadDeclarative(r.Context(), text); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusCreated, flattened(a.active()))
}

// textHash is the hash the gateway gives a loaded text (§5.6).
func textHash(text []byte) string {
	if len(text) == 0 {
		return config.EmptyHash
	}
	return config.Hash(text)
}

// declarativeText finds the document of a POST /config body (§4.8 step 1):
// a YAML or JSON body, or the string field `config` of a JSON or form body.
// A JSON document is re-encoded canonically (keys sorted, no spaces), so its
// hash does not depend on formatting.
func declarativeText(b *requestBody) ([]byte, error) {
	switch b.mediaType {
	case "":
		return nil, errNoDeclarative
	case "application/yaml", "text/yaml", "application/x-yaml":
		return b.data, nil
	case "application/json":
		m, err := jsonObject(b.data)
		if err != nil {
			return nil, err
		}
		if m == nil {
			return nil, errNoDeclarative
		}
		if _, ok := m["_format_version"]; ok {
			return json.Marshal(m)
		}
		if s, ok := m["config"].(string); ok && s != "" {
			return []byte(s), nil
		}
		return nil, errNoDeclarative
	default:
		vals, err := formValues(b)
		if err != nil {
			return nil, errBadForm
		}
		if s := vals.Get("config"); s != "" {
			return []byte(s), nil
		}
		return nil, errNoDeclarative
	}
}

// flattened renders entities as POST /config answers them: collection →
// id → entity, non-empty collections only.
func flattened(e *config.Entities) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, c := range collections {
		items := c.items(e)
		if len(items) == 0 {
			continue
		}
		m := make(map[string]any, len(items))
		for _, it := range items {
			m[it.id] = it.value
		}
		out[c.entity] = m
	}
	return out
}
