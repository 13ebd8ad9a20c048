package store

import (
	"context"
	"errors"
	"sync"
	"time"
)

// hub fans revisions out to the Watch subscribers.
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

// subscriber holds one Watch channel. Its buffer of one keeps the latest
// revision: senders never block, and a slow reader skips to the newest.
type subscriber struct {
	mu     sync.Mutex
	ch     chan int64
	last   int64
	closed bool
}

func (h *hub) add(s *subscriber) {
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
}

func (h *hub) remove(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
	s.close()
}

func (h *hub) publish(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.offer(rev)
	}
}

// offer delivers rev unless the subscriber has seen it or a later one.
func (s *subscriber) offer(rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || rev <= s.last {
		return
	}
	s.last = rev
	select {
	case s.ch <- rev:
	default:
		// Replace the unread older revision; s.mu excludes other senders,
		// so the buffer has room after the drain.
		select {
		case <-s.ch:
		default:
		}
		s.ch <- rev
	}
}

func (s *subscriber) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// Watch starts a watcher owned by ctx and the Store: one goroutine polls
// (and, on PostgreSQL, another keeps a LISTEN connection); both end when
// ctx ends or the Store closes, and the channel closes after them.
func (s *sqlStore) Watch(ctx context.Context) <-chan int64 {
	sub := &subscriber{ch: make(chan int64, 1), last: -1}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sub.close()
		return sub.ch
	}
	s.hub.add(sub)
	s.watchers.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.watchers.Done()
		defer s.hub.remove(sub)
		ctx, cancel := context.WithCancel(ctx)
		var listener sync.WaitGroup
		defer listener.Wait()
		defer cancel()

		pollNow := make(chan struct{}, 1)
		listener.Add(1)
		go func() {
			defer listener.Done()
			s.listen(ctx, sub, pollNow)
		}()

		ticker := time.NewTicker(s.poll)
		defer ticker.Stop()
		for {
			s.pollOnce(ctx, sub)
			select {
			case <-ctx.Done():
				return
			case <-s.closing:
				return
			case <-ticker.C:
			case <-pollNow:
			}
		}
	}()
	return sub.ch
}

// pollOnce reads the revision; its success or failure is the database's
// reachability (§6.7).
func (s *sqlStore) pollOnce(ctx context.Context, sub *subscriber) {
	ctx, cancel := context.WithTimeout(ctx, max(s.poll, time.Second))
	defer cancel()
	rev, err := s.Revision(ctx)
	if err != nil {
		if ctx.Err() == nil || errors.Is(err, context.DeadlineExceeded) {
			s.reachable.Store(false)
		}
		return
	}
	sub.offer(rev)
}

// listen keeps the engine's notification connection up until ctx ends,
// reconnecting after failures; every (re)connection asks for a poll, since
// notifications sent meanwhile are lost.
func (s *sqlStore) listen(ctx context.Context, sub *subscriber, pollNow chan<- struct{}) {
	delay := min(s.poll, time.Second)
	for {
		err := s.d.listen(ctx, sub.offer, func() {
			select {
			case pollNow <- struct{}{}:
			default:
			}
		})
		if err == nil || ctx.Err() != nil {
			return
		}
		_ = s.fail(err) // only records reachability
		s.log.Warn("datastore notifications interrupted; reconnecting", "error", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}
