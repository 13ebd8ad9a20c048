//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive, non-blocking flock on lockPath. The kernel
// drops it when the process dies, so a crash leaves no stale lock.
func lockFile(lockPath, dbPath string) (unlock func() error, err error) {
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600) // #nosec G304 -- sqlite_path + ".lock", from the settings
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Path: dbPath}
		}
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	return f.Close, nil // closing the descriptor releases the lock
}
