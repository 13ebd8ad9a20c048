package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// sqlTx implements Tx inside a write transaction that already holds the
// revision row lock, so its checks cannot race another writer.
type sqlTx struct {
	reader
	tx   *sql.Tx
	rev  int64
	now  time.Time
	done bool
}

var _ Tx = (*sqlTx)(nil)

type writeMode int

const (
	modeInsert writeMode = iota
	modeUpsert
	modeUpdate
	// modeImport upserts, keeps stored created_at, matches key-auth
	// credentials by key and leaves certificates' SNIs to the SNI entities.
	modeImport
)

var errTxDone = errors.New("store: transaction already finished")

func (t *sqlTx) Revision() int64 { return t.rev }

func (t *sqlTx) Insert(ctx context.Context, e any) error {
	_, err := t.write(ctx, e, modeInsert)
	return err
}

func (t *sqlTx) Upsert(ctx context.Context, e any) (bool, error) {
	return t.write(ctx, e, modeUpsert)
}

func (t *sqlTx) Update(ctx context.Context, e any) error {
	_, err := t.write(ctx, e, modeUpdate)
	return err
}

func (t *sqlTx) write(ctx context.Context, v any, mode writeMode) (created bool, err error) {
	if t.done {
		return false, errTxDone
	}
	e, err := adapt(v)
	if err != nil {
		return false, err
	}
	table := string(e.kind)

	if *e.id == "" {
		if mode == modeUpdate {
			return false, ErrNotFound
		}
		*e.id = uuid.NewString()
	}
	*e.id = strings.ToLower(*e.id)
	if kc, ok := v.(*config.KeyauthCredential); ok {
		if kc.Key == "" {
			if kc.Key, err = config.GenerateKey(nil); err != nil {
				return false, err
			}
		}
		if mode == modeImport {
			id, err := t.idWhere(ctx, KeyauthCredentials, "key", kc.Key)
			switch {
			case err == nil:
				kc.ID = id
			case !errors.Is(err, ErrNotFound):
				return false, err
			}
		}
	}

	if err := t.resolveForeignKeys(ctx, e); err != nil {
		return false, err
	}

	// The stored row decides insert or replace and keeps created_at.
	var storedCreated float64
	err = t.q.QueryRowContext(ctx, `SELECT created_at FROM `+table+` WHERE id = $1`, *e.id).Scan(&storedCreated)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, t.s.fail(err)
	}
	switch {
	case mode == modeInsert && exists:
		return false, &PrimaryKeyError{Kind: e.kind, ID: *e.id}
	case mode == modeUpdate && !exists:
		return false, ErrNotFound
	}

	for _, g := range e.uniques() {
		where := make([]string, len(g.columns))
		args := make([]any, 0, len(g.columns)+1)
		for i, c := range g.columns {
			args = append(args, c.value)
			where[i] = fmt.Sprintf("%s = $%d", c.name, len(args))
		}
		args = append(args, *e.id)
		var other string
		err := t.q.QueryRowContext(ctx, fmt.Sprintf(`SELECT id FROM %s WHERE %s AND id <> $%d`,
			table, strings.Join(where, " AND "), len(args)), args...).Scan(&other)
		if err == nil {
			ue := &UniqueError{Kind: e.kind, Fields: g.fields()}
			if g.key != nil {
				ue.Key = g.key()
			} else {
				ue.Key = keyNotation(ue.Fields)
			}
			return false, ue
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return false, t.s.fail(err)
		}
	}

	t.stamp(e, exists, storedCreated, mode == modeImport)

	stored := v
	if c, ok := v.(*config.Certificate); ok {
		// SNIs live in their own table; the column keeps none.
		cp := *c
		cp.SNIs = nil
		stored = &cp
	}
	ent, err := json.Marshal(stored)
	if err != nil {
		return false, fmt.Errorf("encode %s: %w", e.kind, err)
	}
	var tags any
	if e.tags != nil {
		b, err := json.Marshal(e.tags)
		if err != nil {
			return false, fmt.Errorf("encode %s tags: %w", e.kind, err)
		}
		tags = string(b)
	}
	createdCol, updatedCol := e.timestampColumns(t.now)
	names := []string{"created_at", "updated_at", "tags", "entity"}
	args := []any{createdCol, updatedCol, tags, string(ent)}
	for _, c := range e.columns() {
		names = append(names, c.name)
		args = append(args, c.value)
	}
	args = append(args, *e.id)
	var query string
	if exists {
		sets := make([]string, len(names))
		for i, n := range names {
			sets[i] = fmt.Sprintf("%s = $%d", n, i+1)
		}
		query = fmt.Sprintf(`UPDATE %s SET %s WHERE id = $%d`, table, strings.Join(sets, ", "), len(args))
	} else {
		ph := make([]string, len(args))
		for i := range ph {
			ph[i] = fmt.Sprintf("$%d", i+1)
		}
		query = fmt.Sprintf(`INSERT INTO %s (%s, id) VALUES (%s)`, table, strings.Join(names, ", "), strings.Join(ph, ", "))
	}
	if _, err := t.tx.ExecContext(ctx, query, args...); err != nil {
		return false, t.s.fail(err)
	}

	if c, ok := v.(*config.Certificate); ok && mode != modeImport {
		if err := t.replaceSNIs(ctx, c); err != nil {
			return false, err
		}
	}
	return !exists, nil
}

// resolveForeignKeys turns endpoint-key references into ids and checks that
// every referenced entity exists.
func (t *sqlTx) resolveForeignKeys(ctx context.Context, e *entity) error {
	for i, fk := range e.info().fks {
		ref := *e.fks[i]
		if ref == nil {
			continue
		}
		if ref.ID == "" {
			col := kindInfos[fk.parent].key
			if col == "" || fk.keyField == "id" {
				col = "id"
			}
			id, err := t.idWhere(ctx, fk.parent, col, ref.Key)
			if errors.Is(err, ErrNotFound) {
				return &UnresolvedError{Field: fk.field, KeyField: fk.keyField, Value: ref.Key, Parent: fk.parent}
			}
			if err != nil {
				return err
			}
			// A new value: the caller's ForeignKey may be shared.
			*e.fks[i] = &config.ForeignKey{ID: id}
			continue
		}
		if _, err := t.idWhere(ctx, fk.parent, "id", ref.ID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return &ForeignKeyError{Field: fk.field, Parent: fk.parent, ID: ref.ID}
			}
			return err
		}
	}
	return nil
}

// idWhere returns the id of the row whose column equals value.
func (t *sqlTx) idWhere(ctx context.Context, kind Kind, col, value string) (string, error) {
	var id string
	err := t.q.QueryRowContext(ctx, `SELECT id FROM `+string(kind)+` WHERE `+col+` = $1`, value).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", t.s.fail(err)
	}
	return id, nil
}

// stamp sets created_at (kept when given; else the stored one on replace;
// else now) and updated_at (always now), §3.1. An import keeps the stored
// created_at, so importing a file twice leaves it alone.
func (t *sqlTx) stamp(e *entity, exists bool, storedCreated float64, preferStored bool) {
	sec := t.now.Unix()
	ms := float64(t.now.UnixMilli()) / 1000
	switch {
	case e.createdInt != nil:
		if exists && (*e.createdInt == 0 || preferStored) {
			*e.createdInt = int64(storedCreated)
		}
		if *e.createdInt == 0 {
			*e.createdInt = sec
		}
		if e.updatedInt != nil {
			*e.updatedInt = sec
		}
	case e.createdFloat != nil:
		if exists && (*e.createdFloat == 0 || preferStored) {
			*e.createdFloat = storedCreated
		}
		if *e.createdFloat == 0 {
			*e.createdFloat = ms
		}
		*e.updatedFloat = ms
	}
}

// timestampColumns are the row's created_at and updated_at values.
func (e *entity) timestampColumns(now time.Time) (any, any) {
	if e.createdFloat != nil {
		return *e.createdFloat, *e.updatedFloat
	}
	if e.updatedInt == nil {
		return *e.createdInt, now.Unix()
	}
	return *e.createdInt, *e.updatedInt
}

// replaceSNIs makes a certificate's SNI entities match c.SNIs when given
// (§3.8), then sets c.SNIs to the stored names.
func (t *sqlTx) replaceSNIs(ctx context.Context, c *config.Certificate) error {
	if c.SNIs != nil {
		rows, err := t.q.QueryContext(ctx, `SELECT id, name FROM snis WHERE certificate_id = $1`, c.ID)
		if err != nil {
			return t.s.fail(err)
		}
		current := map[string]string{}
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				_ = rows.Close()
				return t.s.fail(err)
			}
			current[name] = id
		}
		err = rows.Err()
		_ = rows.Close()
		if err != nil {
			return t.s.fail(err)
		}
		for name, id := range current {
			if !slices.Contains(c.SNIs, name) {
				if _, err := t.tx.ExecContext(ctx, `DELETE FROM snis WHERE id = $1`, id); err != nil {
					return t.s.fail(err)
				}
			}
		}
		for _, name := range c.SNIs {
			if _, ok := current[name]; ok {
				continue
			}
			sni := &config.SNI{Name: name, Certificate: &config.ForeignKey{ID: c.ID}}
			if _, err := t.write(ctx, sni, modeInsert); err != nil {
				return err
			}
		}
	}
	names, err := t.sniNames(ctx, c.ID)
	if err != nil {
		return err
	}
	c.SNIs = names
	return nil
}

func (t *sqlTx) Delete(ctx context.Context, kind Kind, ref string) error {
	if t.done {
		return errTxDone
	}
	info, err := lookupInfo(kind)
	if err != nil {
		return err
	}
	col, val := refColumn(info, ref)
	if col == "" {
		return ErrNotFound
	}
	id, err := t.idWhere(ctx, kind, col, val)
	if err != nil {
		return err
	}
	// RESTRICT references refuse the delete with a typed error; the
	// database enforces the same and cascades the rest (§3.9).
	for _, child := range Kinds() {
		for _, fk := range kindInfos[child].fks {
			if fk.parent != kind || !fk.restrict {
				continue
			}
			var one int
			err := t.q.QueryRowContext(ctx, `SELECT 1 FROM `+string(child)+` WHERE `+fk.column+` = $1 LIMIT 1`, id).Scan(&one)
			if err == nil {
				return &ReferencedError{Kind: kind, By: child}
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return t.s.fail(err)
			}
		}
	}
	// #nosec G202 -- kind passed lookupInfo: a fixed table name, never request data
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM `+string(kind)+` WHERE id = $1`, id); err != nil {
		return t.s.fail(err)
	}
	return nil
}
