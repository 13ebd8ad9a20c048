package admin

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/datakit-gateway/datakit/gateway/store"
)

// tagRow is one (tag, entity) pair of GET /tags (§4.9).
type tagRow struct {
	EntityName string `json:"entity_name"`
	EntityID   string `json:"entity_id"`
	Tag        string `json:"tag"`
}

func compareTagRows(a, b tagRow) int {
	return cmp.Or(strings.Compare(a.Tag, b.Tag), strings.Compare(a.EntityName, b.EntityName),
		strings.Compare(a.EntityID, b.EntityID))
}

// tagsPage is a page of GET /tags; offset and next as in entity lists.
type tagsPage struct {
	Data   []tagRow `json:"data"`
	Next   *string  `json:"next"`
	Offset string   `json:"offset,omitempty"`
}

// Tag cursors are base64url of the JSON array [tag, entity_name, entity_id]
// of the last row: rows are ordered by that triple, not by id.
func encodeTagOffset(r tagRow) string {
	b, _ := json.Marshal([]string{r.Tag, r.EntityName, r.EntityID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeTagOffset(s string) (tagRow, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return tagRow{}, invalidOffset(s, "bad base64 encoding")
	}
	var v []string
	if err := json.Unmarshal(raw, &v); err != nil || len(v) != 3 {
		return tagRow{}, invalidOffset(s, "bad offset")
	}
	return tagRow{Tag: v[0], EntityName: v[1], EntityID: v[2]}, nil
}

// tags serves GET /tags and GET /tags/{tag}: every (tag, entity) pair, from
// the snapshot (database = off) or the store.
func (a *api) tags(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size, err := parseSize(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if size == 0 {
		size = defaultPageSize
	}
	var after *tagRow
	if q.Has("offset") {
		row, err := decodeTagOffset(q.Get("offset"))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		after = &row
	}
	only := param(r, "tag") // "" for GET /tags
	var rows []tagRow
	switch {
	case a.dbless:
		rows = a.snapshotTags(only)
	case a.opts.Store == nil:
		a.fail(w, r, errDatabaseUnreachable)
		return
	default:
		if rows, err = storeTags(r.Context(), a.opts.Store, only); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	slices.SortFunc(rows, compareTagRows)
	if after != nil {
		i, found := slices.BinarySearchFunc(rows, *after, compareTagRows)
		if found {
			i++
		}
		rows = rows[i:]
	}
	page := tagsPage{Data: rows}
	if len(rows) > size {
		page.Data = rows[:size]
		page.Offset = encodeTagOffset(rows[size-1])
		link := r.URL.EscapedPath() + "?offset=" + url.QueryEscape(page.Offset)
		if q.Has("size") {
			link += "&size=" + url.QueryEscape(q.Get("size"))
		}
		page.Next = &link
	}
	if page.Data == nil {
		page.Data = []tagRow{}
	}
	writeJSON(w, r, http.StatusOK, page)
}

// snapshotTags collects the pairs of the running snapshot.
func (a *api) snapshotTags(only string) []tagRow {
	ents := a.active()
	var rows []tagRow
	for _, c := range collections {
		for _, it := range c.items(ents) {
			rows = appendTags(rows, c.entity, it.id, it.tags, only)
		}
	}
	return rows
}

func appendTags(rows []tagRow, entity, id string, tags []string, only string) []tagRow {
	for _, t := range tags {
		if only == "" || t == only {
			rows = append(rows, tagRow{EntityName: entity, EntityID: id, Tag: t})
		}
	}
	return rows
}

// storeTags collects the pairs from the store through its List API: every
// collection is read page by page (with a tag filter for /tags/{tag}). The
// store has no tag index of its own, so a page of /tags costs a scan of the
// tagged entities.
func storeTags(ctx context.Context, rd store.Reader, only string) ([]tagRow, error) {
	var rows []tagRow
	for _, c := range collections {
		opts := store.ListOptions{Size: maxPageSize}
		if only != "" {
			opts.Tags, opts.TagsAll = []string{only}, true
		}
		for {
			page, err := rd.List(ctx, kindOf(c), opts)
			if err != nil {
				return nil, err
			}
			for _, raw := range page.Data {
				var e struct {
					ID   string   `json:"id"`
					Tags []string `json:"tags"`
				}
				if err := json.Unmarshal(raw, &e); err != nil {
					return nil, err
				}
				rows = appendTags(rows, c.entity, e.ID, e.Tags, only)
			}
			if page.Next == "" {
				break
			}
			opts.Offset = page.Next
		}
	}
	return rows, nil
}
