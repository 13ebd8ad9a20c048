//go:build !unix

package store

import (
	"errors"
	"fmt"
	"os"
)

// lockFile creates lockPath exclusively where flock is not available; a
// crash leaves the file behind, to be removed by hand.
func lockFile(lockPath, dbPath string) (unlock func() error, err error) {
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, &LockedError{Path: dbPath}
		}
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	return func() error {
		return errors.Join(f.Close(), os.Remove(lockPath))
	}, nil
}
