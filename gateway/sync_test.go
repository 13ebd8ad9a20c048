package gateway

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// flakySource fails its first reads, then answers revision 2.
type flakySource struct {
	mu    sync.Mutex
	fails int
	revs  chan int64
}

func (s *flakySource) ReadAll(context.Context) (*config.Entities, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fails > 0 {
		s.fails--
		return nil, 0, errors.New("database unreachable")
	}
	return &config.Entities{}, 2, nil
}

func (s *flakySource) Watch(context.Context) <-chan int64 { return s.revs }

// TestSyncRetriesFailedReads: a revision announced while the database could
// not be read is still picked up once it answers, without a new signal.
func TestSyncRetriesFailedReads(t *testing.T) {
	g := New(Options{})
	src := &flakySource{fails: 1, revs: make(chan int64, 1)}
	src.revs <- 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	swapped := make(chan int64, 4)
	go g.Sync(ctx, src, SyncOptions{Debounce: time.Millisecond, OnResult: func(rev int64, err error) {
		if err == nil {
			swapped <- rev
		}
	}})
	select {
	case rev := <-swapped:
		if rev != 2 || g.Snapshot().Revision() != 2 {
			t.Errorf("swapped revision %d, snapshot %d; want 2", rev, g.Snapshot().Revision())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no rebuild after the database came back")
	}
}
