package admin

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/store"
)

// Store is what the DB modes need of the datastore; store.Store satisfies
// it.
type Store interface {
	store.Reader
	Tx(ctx context.Context, fn func(store.Tx) error) (revision int64, err error)
}

var _ Store = store.Store(nil)

// revisionHeader tells a client which revision its write made (§4.2).
const revisionHeader = "X-Datakit-Config-Revision"

func kindOf(c *collection) store.Kind { return store.Kind(c.entity) }

// decoders decode and validate an entity of each collection into the
// pointer the store writes.
var decoders = map[*collection]func(map[string]any, config.PluginSchemas) (any, *config.FieldErrors){
	services:  decoder(config.DecodeService),
	routes:    decoder(config.DecodeRoute),
	consumers: decoder(config.DecodeConsumer),
	plugins: func(in map[string]any, ps config.PluginSchemas) (any, *config.FieldErrors) {
		e, fe := config.DecodePlugin(in, ps)
		return &e, fe
	},
	upstreams:    decoder(config.DecodeUpstream),
	targets:      decoder(config.DecodeTarget),
	certificates: decoder(config.DecodeCertificate),
	snis:         decoder(config.DecodeSNI),
	keyauths:     decoder(config.DecodeKeyauthCredential),
}

// decoder adapts an entity decoder that needs no plugin schemas.
func decoder[T any](decode func(map[string]any) (T, *config.FieldErrors)) func(map[string]any, config.PluginSchemas) (any, *config.FieldErrors) {
	return func(in map[string]any, _ config.PluginSchemas) (any, *config.FieldErrors) {
		e, fe := decode(in)
		return &e, fe
	}
}

// fkID reads the id of a foreign key field from an entity's JSON.
func fkID(raw json.RawMessage, field string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	var ref struct{ ID string }
	if json.Unmarshal(m[field], &ref) != nil {
		return ""
	}
	return ref.ID
}

func idOf(raw json.RawMessage) string { return fkID(json.RawMessage(`{"x":`+string(raw)+`}`), "x") }

// resolveParent finds the parent of a nested path; its id.
func (a *api) resolveParent(ctx context.Context, rd store.Reader, r *http.Request, n *nesting) (string, error) {
	raw, err := rd.Get(ctx, kindOf(n.parent), param(r, n.parent.entity))
	if err != nil {
		return "", err
	}
	return idOf(raw), nil
}

// findChild finds the entity an item path names; under a parent it must be
// the parent's child (ErrNotFound otherwise).
func findChild(ctx context.Context, rd store.Reader, s scope, parentID, ref string) (json.RawMessage, error) {
	if s.c == targets {
		return rd.GetTarget(ctx, parentID, ref)
	}
	raw, err := rd.Get(ctx, kindOf(s.c), ref)
	if err != nil {
		return nil, err
	}
	if s.n != nil && fkID(raw, s.n.field) != parentID {
		return nil, store.ErrNotFound
	}
	return raw, nil
}

// storeList serves GET of a collection from the store.
func (a *api) storeList(s scope) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lq, err := parseListQuery(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		opts := store.ListOptions{Size: lq.size, Offset: lq.offset, Tags: lq.tags, TagsAll: lq.tagsAll}
		if s.n != nil {
			pid, err := a.resolveParent(r.Context(), a.opts.Store, r, s.n)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			opts.Parent = &store.Ref{Kind: kindOf(s.n.parent), ID: pid}
		}
		if q := r.URL.Query(); s.c == consumers && q.Has("custom_id") {
			cid := q.Get("custom_id")
			opts.CustomID = &cid
		}
		page, err := a.opts.Store.List(r.Context(), kindOf(s.c), opts)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, r, http.StatusOK, lq.page(r, page.Data, page.Next))
	}
}

// storeGet serves GET of one entity from the store.
func (a *api) storeGet(s scope) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, rd := r.Context(), a.opts.Store
		pid := ""
		if s.n != nil {
			var err error
			if pid, err = a.resolveParent(ctx, rd, r, s.n); err != nil {
				a.fail(w, r, err)
				return
			}
		}
		raw, err := findChild(ctx, rd, s, pid, param(r, s.c.entity))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeRaw(w, r, http.StatusOK, raw)
	}
}

// linkedID is the id the foreign key field of the entity in the path points
// to; errNotFound when it is unset.
func (a *api) linkedID(r *http.Request, c *collection, field string) (string, error) {
	raw, err := a.opts.Store.Get(r.Context(), kindOf(c), param(r, c.entity))
	if err != nil {
		return "", err
	}
	if id := fkID(raw, field); id != "" {
		return id, nil
	}
	return "", errNotFound
}

// storeLink serves GET /es/{e}/{field}.
func (a *api) storeLink(c *collection, field string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := a.linkedID(r, c, field)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		parent, err := a.opts.Store.Get(r.Context(), kindOf(linkTargets[field]), id)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeRaw(w, r, http.StatusOK, parent)
	}
}

// storeLinkWrite serves PUT and PATCH of /es/{e}/{field}: they act on the
// parent.
func (a *api) storeLinkWrite(c *collection, field string, parent *collection) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := a.linkedID(r, c, field)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		a.write(w, r, scope{c: parent}, r.Method, id)
	}
}

// storeWrite serves POST, PUT, PATCH and DELETE in DB modes (§4.4).
func (a *api) storeWrite(s scope, method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ref := ""
		if method != http.MethodPost {
			ref = param(r, s.c.entity)
		}
		a.write(w, r, s, method, ref)
	}
}

// write runs one entity write in a transaction and answers it.
func (a *api) write(w http.ResponseWriter, r *http.Request, s scope, method, ref string) {
	var in map[string]any
	if method != http.MethodDelete {
		var err error
		if in, err = a.decodeEntity(r, s.c); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	var (
		out    any
		status = http.StatusOK
	)
	rev, err := a.opts.Store.Tx(r.Context(), func(tx store.Tx) error {
		ctx := r.Context()
		pid := ""
		if s.n != nil {
			var err error
			if pid, err = a.resolveParent(ctx, tx, r, s.n); err != nil {
				return err
			}
			if in != nil {
				in[s.n.field] = map[string]any{"id": pid}
			}
		}
		var existing json.RawMessage
		if ref != "" {
			raw, err := findChild(ctx, tx, s, pid, ref)
			switch {
			case err == nil:
				existing = raw
			case errors.Is(err, store.ErrNotFound):
				// A nested path names its parent's child only (§4.3):
				// another parent's child is 404, even for DELETE.
				if s.n != nil && s.c != targets {
					if _, gerr := tx.Get(ctx, kindOf(s.c), ref); gerr == nil {
						return store.ErrNotFound
					}
				}
			default:
				return err
			}
		}
		switch method {
		case http.MethodDelete:
			status = http.StatusNoContent
			if existing == nil {
				return nil
			}
			return tx.Delete(ctx, kindOf(s.c), idOf(existing))
		case http.MethodPost:
			ent, err := a.decode(s.c, in)
			if err != nil {
				return err
			}
			status, out = http.StatusCreated, ent
			return tx.Insert(ctx, ent)
		case http.MethodPut:
			if err := pathValue(s.c, in, ref); err != nil {
				return err
			}
			if existing != nil {
				in["id"] = idOf(existing)
			} else if _, ok := in["id"].(string); !ok {
				in["id"] = uuid.NewString()
			}
			ent, err := a.decode(s.c, in)
			if err != nil {
				return err
			}
			out = ent
			_, err = tx.Upsert(ctx, ent)
			return err
		default: // PATCH
			if existing == nil {
				return store.ErrNotFound
			}
			var cur map[string]any
			if err := json.Unmarshal(existing, &cur); err != nil {
				return err
			}
			ent, err := a.decode(s.c, merge(s.c, cur, in))
			if err != nil {
				return err
			}
			out = ent
			return tx.Update(ctx, ent)
		}
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set(revisionHeader, strconv.FormatInt(rev, 10))
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, r, status, out)
}

// decode validates an entity body.
func (a *api) decode(c *collection, in map[string]any) (any, error) {
	ent, fe := decoders[c](in, a.schemas())
	if !fe.Empty() {
		return nil, fe
	}
	return ent, nil
}

// pathValue puts a PUT's path segment into the body: the id when
// UUID-shaped, else the endpoint key; a differing body value is a
// violation (§4.4).
func pathValue(c *collection, in map[string]any, ref string) error {
	field := c.key
	if config.IsUUID(ref) || field == "" {
		field, ref = "id", strings.ToLower(ref)
	}
	if v, ok := in[field]; ok && v != nil && v != ref {
		fe := &config.FieldErrors{}
		fe.Field(field).Add("cannot be different from the value in the URL")
		return fe
	}
	in[field] = ref
	return nil
}

// recordFields are the fields PATCH merges recursively (§4.4).
var recordFields = map[string]bool{"config": true, "healthchecks": true}

// merge applies a PATCH body to the stored entity: records merge
// recursively, everything else (arrays, sets, maps) is replaced, null
// clears; a plugin keeps its name; a Service `url` replaces the fields it
// sets.
func merge(c *collection, cur, patch map[string]any) map[string]any {
	out := maps.Clone(cur)
	if c == services {
		if _, ok := patch["url"]; ok {
			for _, f := range []string{"protocol", "host", "port", "path"} {
				delete(out, f)
			}
		}
	}
	for k, v := range patch {
		if c == plugins && k == "name" {
			continue
		}
		if pm, ok := v.(map[string]any); ok && recordFields[k] {
			if cm, ok := out[k].(map[string]any); ok {
				out[k] = mergeRecord(cm, pm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

func mergeRecord(cur, patch map[string]any) map[string]any {
	out := maps.Clone(cur)
	for k, v := range patch {
		pm, pok := v.(map[string]any)
		cm, cok := out[k].(map[string]any)
		if pok && cok {
			out[k] = mergeRecord(cm, pm)
			continue
		}
		out[k] = v
	}
	return out
}
