package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestT40SQLiteLockAndIntegrity: hardening T40's store half. A second open
// of a SQLite file in use fails at once with the lock's message (the
// process-level check is in cmd/datakit), and a damaged file is refused at
// open by PRAGMA quick_check instead of being served or written.
func TestT40SQLiteLockAndIntegrity(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "datakit.db")
	s, err := OpenSQLite(ctx, SQLiteOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		insert(t, s, newConsumer(t, "c"+string(rune('a'+i%26))+randomHex(4), "custom_id", randomHex(64)))
	}

	start := time.Now()
	_, err = OpenSQLite(ctx, SQLiteOptions{Path: path})
	var le *LockedError
	if !errors.As(err, &le) || err.Error() != "database file "+path+" is in use by another datakit process" {
		t.Errorf("second OpenSQLite = %v, want the lock's message", err)
	}
	// busy_timeout is 5 s: an answer well below it did not wait on SQLite.
	if took := time.Since(start); took > time.Second {
		t.Errorf("second OpenSQLite took %v, want it to fail at once", took)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Damage the file: a table page in the middle (the header stays, so
	// it still opens as a database), then the header itself.
	for _, at := range []func(size int64) int64{
		func(size int64) int64 { return size / 2 / 4096 * 4096 },
		func(int64) int64 { return 0 },
	} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		garbage := make([]byte, 4096)
		for i := range garbage {
			garbage[i] = byte(i*7 + 3)
		}
		if _, err := f.WriteAt(garbage, at(info.Size())); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = OpenSQLite(ctx, SQLiteOptions{Path: path})
		if err == nil {
			s.Close()
			t.Fatal("OpenSQLite of a damaged file succeeded")
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("OpenSQLite of a damaged file = %v, want ErrCorrupt", err)
		}
		t.Logf("damaged file refused: %v", err)
	}
}
