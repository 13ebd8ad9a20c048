package admin

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/datakit-gateway/datakit/gateway/store"
)

// Page sizes (§4.5).
const (
	defaultPageSize = 100
	maxPageSize     = 1000
	maxTags         = 5
)

// listQuery is a list's paging and filter options (§4.5, §4.6).
type listQuery struct {
	size    int
	rawSize string // as sent, for next; "" when absent
	offset  string // as sent
	after   string // the id the offset points past
	tags    []string
	tagsAll bool
	rawTags string
}

// parseListQuery reads size, offset and tags; unknown parameters are
// ignored (§4.2).
func parseListQuery(r *http.Request) (listQuery, error) {
	q := r.URL.Query()
	lq := listQuery{size: defaultPageSize}
	size, err := parseSize(q)
	if err != nil {
		return lq, err
	}
	if size != 0 {
		lq.size, lq.rawSize = size, q.Get("size")
	}
	if q.Has("offset") {
		lq.offset = q.Get("offset")
		after, err := decodeOffset(lq.offset)
		if err != nil {
			return lq, err
		}
		lq.after = after
	}
	if q.Has("tags") {
		lq.rawTags = q.Get("tags")
		tags, all, err := parseTags(lq.rawTags)
		if err != nil {
			return lq, err
		}
		lq.tags, lq.tagsAll = tags, all
	}
	return lq, nil
}

// parseSize reads the size option (§4.5); 0 when absent.
func parseSize(q url.Values) (int, error) {
	if !q.Has("size") {
		return 0, nil
	}
	f, err := strconv.ParseFloat(q.Get("size"), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, invalidSize("size must be a number")
	}
	if f != math.Trunc(f) || f < 1 || f > maxPageSize {
		return 0, invalidSize("size must be an integer between 1 and 1000")
	}
	return int(f), nil
}

// parseTags reads `a,b` (all) or `a/b` (any), at most 5 (§4.6).
func parseTags(s string) ([]string, bool, error) {
	if s == "" {
		return nil, false, invalidOption("tags", "cannot be null")
	}
	hasAnd, hasOr := strings.Contains(s, ","), strings.Contains(s, "/")
	if hasAnd && hasOr {
		return nil, false, invalidOption("tags", "invalid filter syntax")
	}
	sep := ","
	if hasOr {
		sep = "/"
	}
	tags := strings.Split(s, sep)
	if len(tags) > maxTags {
		return nil, false, invalidOption("tags", "cannot query more than 5 tags")
	}
	for _, t := range tags {
		if t == "" {
			return nil, false, invalidOption("tags", "invalid filter syntax")
		}
	}
	return tags, !hasOr, nil
}

// matchTags applies the tag filter to an entity's tags.
func (lq *listQuery) matchTags(have []string) bool {
	if len(lq.tags) == 0 {
		return true
	}
	for _, t := range lq.tags {
		found := slices.Contains(have, t)
		if lq.tagsAll && !found {
			return false
		}
		if !lq.tagsAll && found {
			return true
		}
	}
	return lq.tagsAll
}

// decodeOffset reads a list offset (the store's encoding in every mode).
func decodeOffset(s string) (string, error) {
	after, err := store.DecodeOffset(s)
	var oe *store.OffsetError
	if errors.As(err, &oe) {
		return "", invalidOffset(oe.Offset, oe.Reason)
	}
	return after, err
}

// listBody is a page as Kong renders it; Offset appears only when more
// entities follow.
type listBody struct {
	Data   []json.RawMessage `json:"data"`
	Next   *string           `json:"next"`
	Offset string            `json:"offset,omitempty"`
}

// page renders one page: next is the cursor of the following page ("" when
// none), relative to the request's own path (§4.5).
func (lq *listQuery) page(r *http.Request, data []json.RawMessage, next string) listBody {
	if data == nil {
		data = []json.RawMessage{}
	}
	body := listBody{Data: data}
	if next != "" {
		link := r.URL.EscapedPath() + "?offset=" + url.QueryEscape(next)
		if lq.rawTags != "" {
			link += "&tags=" + url.QueryEscape(lq.rawTags)
		}
		if lq.rawSize != "" {
			link += "&size=" + url.QueryEscape(lq.rawSize)
		}
		body.Next, body.Offset = &link, next
	}
	return body
}

// paginate selects the page of items (sorted by id) that keep passes and
// renders them.
func (lq *listQuery) paginate(items []item, keep func(item) bool) ([]json.RawMessage, string, error) {
	var out []json.RawMessage
	last := ""
	for _, it := range items {
		if it.id <= lq.after || !keep(it) || !lq.matchTags(it.tags) {
			continue
		}
		if len(out) == lq.size {
			return out, store.EncodeOffset(last), nil
		}
		b, err := json.Marshal(it.value)
		if err != nil {
			return nil, "", err
		}
		out = append(out, b)
		last = it.id
	}
	return out, "", nil
}
