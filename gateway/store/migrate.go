package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrationFiles are the numbered schema migrations shared by both engines
// (§6.4). Migrations only add.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded files in version order; their names
// are NNNN_name.sql with distinct versions.
func loadMigrations() ([]migration, error) {
	entries, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migration version %d appears twice", ms[i].version)
		}
	}
	return ms, nil
}

// SchemaVersion is the newest schema version this binary knows.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrate applies the pending migrations, each in its own transaction under
// the dialect's migration lock, and refuses a database migrated by a newer
// binary. Several processes may run it at once: the lock makes each
// migration apply exactly once.
func migrate(ctx context.Context, d dialect, db querier, now func() time.Time) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].version
	if applied, err := appliedVersions(ctx, db); err == nil {
		if slices.Max(append(applied, 0)) > latest {
			return &SchemaVersionError{Database: slices.Max(applied), Supported: latest}
		}
		if !slices.ContainsFunc(ms, func(m migration) bool { return !slices.Contains(applied, m.version) }) {
			// Nothing to apply, so nothing to write: a read-only store
			// still opens and serves (hardening T43).
			return nil
		}
	}
	for _, m := range ms {
		err := d.migrationTx(ctx, func(q querier) error {
			if _, err := q.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at BIGINT NOT NULL
)`); err != nil {
				return err
			}
			var current sql.NullInt64
			if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&current); err != nil {
				return err
			}
			if int(current.Int64) > latest {
				return &SchemaVersionError{Database: int(current.Int64), Supported: latest}
			}
			var one int
			err := q.QueryRowContext(ctx, `SELECT 1 FROM schema_migrations WHERE version = $1`, m.version).Scan(&one)
			if err == nil {
				return nil // applied before
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if _, err := q.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
			}
			_, err = q.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, now().Unix())
			return err
		})
		if err != nil {
			var sv *SchemaVersionError
			if errors.As(err, &sv) {
				return err
			}
			return fmt.Errorf("migrate: %w", d.classify(err))
		}
	}
	return nil
}

// appliedVersions reads schema_migrations without the migration lock; an
// error (no table yet) sends the caller down the locked path.
func appliedVersions(ctx context.Context, db querier) ([]int, error) {
	rows, err := db.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, rows.Err()
}
