package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestClassify feeds the dialects real driver errors: the store's own
// checks normally keep constraint errors away, so they are provoked here
// with raw SQL.
func TestClassify(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		s := h.mustOpen(t)
		d := s.(*sqlStore).d
		ctx := context.Background()
		raw := h.raw(t)
		ins := `INSERT INTO consumers (id, created_at, updated_at, entity, username) VALUES ($1, 0, 0, '{}', 'dup')`
		if _, err := raw.ExecContext(ctx, ins, "00000000-0000-4000-8000-000000000001"); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			run  func() error
			want error
		}{
			{"unique", func() error {
				_, err := raw.ExecContext(ctx, ins, "00000000-0000-4000-8000-000000000002")
				return err
			}, ErrConstraint},
			{"foreign key", func() error {
				_, err := raw.ExecContext(ctx, `INSERT INTO routes (id, created_at, updated_at, entity, service_id)
					VALUES ('00000000-0000-4000-8000-000000000003', 0, 0, '{}', '00000000-0000-4000-8000-00000000ffff')`)
				return err
			}, ErrConstraint},
			{"read-only", func() error {
				conn, err := raw.Conn(ctx)
				if err != nil {
					return err
				}
				defer conn.Close()
				if h.engine == "sqlite" {
					if _, err := conn.ExecContext(ctx, `PRAGMA query_only = 1`); err != nil {
						return err
					}
					defer conn.ExecContext(ctx, `PRAGMA query_only = 0`) //nolint:errcheck // test cleanup
					_, err = conn.ExecContext(ctx, `DELETE FROM consumers`)
					return err
				}
				tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
				if err != nil {
					return err
				}
				defer tx.Rollback() //nolint:errcheck // test cleanup
				_, err = tx.ExecContext(ctx, `DELETE FROM consumers`)
				return err
			}, ErrReadOnly},
			{"other", func() error {
				_, err := raw.ExecContext(ctx, `SELECT no_such_column FROM consumers`)
				return err
			}, nil},
		}
		for _, c := range cases {
			err := c.run()
			if err == nil {
				t.Fatalf("%s: no error", c.name)
			}
			got := d.classify(err)
			if !errors.Is(got, err) {
				t.Errorf("%s: classify lost the driver error: %v", c.name, got)
			}
			for _, sentinel := range []error{ErrConstraint, ErrReadOnly, ErrDiskFull, ErrUnavailable} {
				if errors.Is(got, sentinel) != (sentinel == c.want) {
					t.Errorf("%s: classify(%v) = %v; want %v", c.name, err, got, c.want)
				}
			}
		}
	})
}

// TestClassifyRefusedLogin: a connect the server refuses (here: a role
// that does not exist, SQLSTATE 28000) is an unreachable database for the
// node, not an unexpected error (hardening T41).
func TestClassifyRefusedLogin(t *testing.T) {
	_, database := testDatabase(t)
	ctx := context.Background()
	_, err := pgx.Connect(ctx, pgAdminDSN("datakit_no_such_role_"+randomHex(4), database))
	if err == nil {
		t.Fatal("connecting as a role that does not exist succeeded")
	}
	if got := (&pgDialect{}).classify(err); !errors.Is(got, ErrUnavailable) {
		t.Errorf("classify(%v) = %v, want ErrUnavailable", err, got)
	}
}
