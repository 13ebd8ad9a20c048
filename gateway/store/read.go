package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// reader implements Reader over one transaction.
type reader struct {
	q querier
	s *sqlStore
}

var _ Reader = (*reader)(nil)

func lookupInfo(kind Kind) (*kindInfo, error) {
	info, ok := kindInfos[kind]
	if !ok {
		return nil, fmt.Errorf("store: unknown collection %q", kind)
	}
	return info, nil
}

// refColumn is the column a ref addresses: id when UUID-shaped, else the
// endpoint key ("" when the collection has none).
func refColumn(info *kindInfo, ref string) (col, val string) {
	if config.IsUUID(ref) {
		return "id", strings.ToLower(ref)
	}
	return info.key, ref
}

func (r *reader) Get(ctx context.Context, kind Kind, ref string) (json.RawMessage, error) {
	info, err := lookupInfo(kind)
	if err != nil {
		return nil, err
	}
	col, val := refColumn(info, ref)
	if col == "" {
		return nil, ErrNotFound
	}
	return r.one(ctx, kind, `SELECT entity FROM `+string(kind)+` WHERE `+col+` = $1`, val)
}

func (r *reader) GetBy(ctx context.Context, kind Kind, field, value string) (json.RawMessage, error) {
	info, err := lookupInfo(kind)
	if err != nil {
		return nil, err
	}
	if field != "id" && !slices.Contains(info.lookups, field) {
		return nil, fmt.Errorf("store: %s has no unique field %q", kind, field)
	}
	return r.one(ctx, kind, `SELECT entity FROM `+string(kind)+` WHERE `+field+` = $1`, value)
}

func (r *reader) GetTarget(ctx context.Context, upstreamID, ref string) (json.RawMessage, error) {
	col, val := "target", ref
	if config.IsUUID(ref) {
		col, val = "id", strings.ToLower(ref)
	}
	return r.one(ctx, Targets, `SELECT entity FROM targets WHERE upstream_id = $1 AND `+col+` = $2`, upstreamID, val)
}

// one reads a single entity column.
func (r *reader) one(ctx context.Context, kind Kind, query string, args ...any) (json.RawMessage, error) {
	var ent string
	err := r.q.QueryRowContext(ctx, query, args...).Scan(&ent)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, r.s.fail(err)
	}
	return r.output(ctx, kind, ent)
}

// output turns a stored entity into its Admin API form: certificates list
// the names of their SNIs.
func (r *reader) output(ctx context.Context, kind Kind, ent string) (json.RawMessage, error) {
	if kind != Certificates {
		return json.RawMessage(ent), nil
	}
	var c config.Certificate
	if err := json.Unmarshal([]byte(ent), &c); err != nil {
		return nil, fmt.Errorf("decode certificate: %w", err)
	}
	names, err := r.sniNames(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	c.SNIs = names
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode certificate: %w", err)
	}
	return b, nil
}

// sniNames lists a certificate's SNI names, sorted, [] when none.
func (r *reader) sniNames(ctx context.Context, certID string) ([]string, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT name FROM snis WHERE certificate_id = $1`, certID)
	if err != nil {
		return nil, r.s.fail(err)
	}
	defer rows.Close()
	names := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, r.s.fail(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, r.s.fail(err)
	}
	slices.Sort(names)
	return names, nil
}

// List scans the collection in id order from the offset, applying the tag
// filter to each row, until a page and one more match are found.
func (r *reader) List(ctx context.Context, kind Kind, opts ListOptions) (Page, error) {
	info, err := lookupInfo(kind)
	if err != nil {
		return Page{}, err
	}
	size := opts.Size
	switch {
	case size == 0:
		size = defaultPageSize
	case size < 1 || size > maxPageSize:
		return Page{}, &SizeError{Size: opts.Size}
	}
	after := ""
	if opts.Offset != "" {
		if after, err = DecodeOffset(opts.Offset); err != nil {
			return Page{}, err
		}
	}
	where := []string{"id > $1"}
	args := []any{after}
	if opts.Parent != nil {
		col := ""
		for _, fk := range info.fks {
			if fk.parent == opts.Parent.Kind {
				col = fk.column
			}
		}
		if col == "" {
			return Page{}, fmt.Errorf("store: %s has no parent in %s", kind, opts.Parent.Kind)
		}
		args = append(args, opts.Parent.ID)
		where = append(where, fmt.Sprintf("%s = $%d", col, len(args)))
	}
	if opts.CustomID != nil {
		if kind != Consumers {
			return Page{}, fmt.Errorf("store: custom_id filters consumers only, not %s", kind)
		}
		args = append(args, *opts.CustomID)
		where = append(where, fmt.Sprintf("custom_id = $%d", len(args)))
	}
	// Without tags the first size+1 rows decide the page; with tags, scan
	// in chunks until enough rows match.
	chunk := size + 1
	if len(opts.Tags) > 0 {
		chunk = max(chunk, 200)
	}
	args = append(args, chunk)
	query := fmt.Sprintf(`SELECT id, tags, entity FROM %s WHERE %s ORDER BY id LIMIT $%d`,
		kind, strings.Join(where, " AND "), len(args))

	var page Page
	var lastID string
	for {
		n, err := r.scanChunk(ctx, kind, query, args, func(id, tags, ent string) (bool, error) {
			if !tagsMatch(tags, opts.Tags, opts.TagsAll) {
				return true, nil
			}
			if len(page.Data) == size {
				page.Next = EncodeOffset(lastID)
				return false, nil
			}
			out, err := r.output(ctx, kind, ent)
			if err != nil {
				return false, err
			}
			page.Data = append(page.Data, out)
			lastID = id
			return true, nil
		}, &args[0])
		if err != nil {
			return Page{}, err
		}
		if page.Next != "" || n < chunk {
			return page, nil
		}
	}
}

// scanChunk runs one chunk query, calling fn per row until it returns
// false; it moves *after to the last row scanned and returns the row count.
func (r *reader) scanChunk(ctx context.Context, kind Kind, query string, args []any,
	fn func(id, tags, ent string) (bool, error), after *any) (int, error) {
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, r.s.fail(err)
	}
	type row struct{ id, tags, ent string }
	var got []row
	for rows.Next() {
		var (
			rw   row
			tags sql.NullString
		)
		if err := rows.Scan(&rw.id, &tags, &rw.ent); err != nil {
			_ = rows.Close()
			return 0, r.s.fail(err)
		}
		rw.tags = tags.String
		got = append(got, rw)
	}
	err = rows.Err()
	_ = rows.Close()
	if err != nil {
		return 0, r.s.fail(err)
	}
	// Rows are closed before fn runs: fn may query (certificate SNIs) on
	// the same connection.
	for _, rw := range got {
		*after = rw.id
		more, err := fn(rw.id, rw.tags, rw.ent)
		if err != nil || !more {
			return len(got), err
		}
	}
	return len(got), nil
}

// tagsMatch applies a tag filter to a row's tags column.
func tagsMatch(column string, want []string, all bool) bool {
	if len(want) == 0 {
		return true
	}
	if column == "" || column == "null" {
		return false
	}
	var have []string
	if err := json.Unmarshal([]byte(column), &have); err != nil {
		return false
	}
	for _, w := range want {
		found := slices.Contains(have, w)
		if all && !found {
			return false
		}
		if !all && found {
			return true
		}
	}
	return all
}

// EncodeOffset is the opaque list offset after lastID: base64url of a JSON
// array holding it (§4.5). The Admin API pages snapshots with it too, so a
// cursor reads the same in every mode.
func EncodeOffset(lastID string) string {
	b, _ := json.Marshal([]string{lastID})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeOffset reads an offset EncodeOffset made; others are an
// *OffsetError.
func DecodeOffset(s string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return "", &OffsetError{Offset: s, Reason: "bad base64 encoding"}
	}
	var v []string
	if err := json.Unmarshal(raw, &v); err != nil || len(v) != 1 || !config.IsUUID(v[0]) {
		return "", &OffsetError{Offset: s, Reason: "bad offset"}
	}
	return strings.ToLower(v[0]), nil
}
