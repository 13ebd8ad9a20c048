package gateway

import (
	"context"
	"time"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// Source is a configuration database as the gateway follows it (gateway.md
// §6.6–6.7): one consistent read of everything, and a stream of revisions.
type Source interface {
	ReadAll(ctx context.Context) (*config.Entities, int64, error)
	Watch(ctx context.Context) <-chan int64
}

// SyncOptions configure Sync.
type SyncOptions struct {
	Build BuildOptions
	// Debounce waits this long after a signal without a new one
	// (db_update_debounce); a rebuild starts at most 1 s after the first.
	Debounce time.Duration
	// OnResult is told the outcome of every rebuild (nil error: swapped).
	OnResult func(revision int64, err error)
}

// maxDebounceDelay bounds how long signals can postpone a rebuild.
const maxDebounceDelay = time.Second

// readRetryDelay spaces retries of a failed database read.
const readRetryDelay = time.Second

// LoadFrom builds and swaps the database's current configuration; the
// startup path of the DB modes.
func (g *Gateway) LoadFrom(ctx context.Context, src Source, opts BuildOptions) (int64, error) {
	ents, rev, err := src.ReadAll(ctx)
	if err != nil {
		return 0, err
	}
	return rev, g.swapBuilt(ctx, ents, rev, opts)
}

func (g *Gateway) swapBuilt(ctx context.Context, ents *config.Entities, rev int64, opts BuildOptions) error {
	opts.Previous = g.Snapshot()
	if opts.Previous != nil && rev <= opts.Previous.revision {
		return nil // a lower or equal revision is never swapped in
	}
	doc, err := config.Export(ents)
	if err != nil {
		return err
	}
	opts.Hash = config.Hash(doc)
	snap, err := Build(ctx, ents, opts)
	if err != nil {
		return err
	}
	snap.revision = rev
	g.Swap(snap)
	return nil
}

// Sync follows the database until ctx ends: every revision above the active
// one (a local commit, a notification or a poll) schedules a rebuild after
// the debounce; rebuilds never overlap and a failed one keeps the running
// snapshot (the next revision retries).
func (g *Gateway) Sync(ctx context.Context, src Source, opts SyncOptions) {
	revisions := src.Watch(ctx)
	var timer <-chan time.Time
	var first time.Time
	pending := false
	for {
		select {
		case <-ctx.Done():
			return
		case rev, ok := <-revisions:
			if !ok {
				return
			}
			if snap := g.Snapshot(); snap != nil && rev <= snap.revision {
				continue
			}
			now := time.Now()
			if !pending {
				pending, first = true, now
			}
			wait := min(opts.Debounce, maxDebounceDelay-now.Sub(first))
			timer = time.After(max(wait, 0))
		case <-timer:
			pending, timer = false, nil
			ents, rev, err := src.ReadAll(ctx)
			if err != nil {
				// The announced revision will not be sent again: retry the
				// read until the database answers. A configuration that
				// fails to build instead waits for the next revision.
				pending, first, timer = true, time.Now(), time.After(readRetryDelay)
			} else {
				err = g.swapBuilt(ctx, ents, rev, opts.Build)
			}
			if opts.OnResult != nil && ctx.Err() == nil {
				opts.OnResult(rev, err)
			}
		}
	}
}

// Revision is the database revision the snapshot was built from (0 in
// DB-less mode).
func (s *Snapshot) Revision() int64 { return s.revision }
