package store

import (
	"context"
	"testing"
	"time"
)

// next waits for a revision at least want on ch.
func next(t *testing.T, ch <-chan int64, want int64, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case rev, ok := <-ch:
			if !ok {
				t.Fatalf("watch channel closed waiting for revision %d", want)
			}
			if rev >= want {
				return
			}
		case <-timeout:
			t.Fatalf("no revision %d within %v", want, within)
		}
	}
}

func TestWatchLocalCommit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		// Polls too rare to matter: only the commit can deliver in time.
		s, err := h.open(t, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx, cancel := context.WithCancel(context.Background())
		ch := s.Watch(ctx)
		next(t, ch, 0, 5*time.Second) // the first poll, at once
		rev := insert(t, s, newService(t, "a"))
		next(t, ch, rev, 5*time.Second)
		rev = insert(t, s, newService(t, "b"))
		next(t, ch, rev, 5*time.Second)
		cancel()
		for range ch { // closes once the watcher has ended
		}
		if !s.Reachable() {
			t.Errorf("Reachable() = false")
		}
	})
}

func TestWatchPolling(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		s, err := h.open(t, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		ch := s.Watch(context.Background())
		// A write the store does not see: another process, as far as
		// it can tell (on PostgreSQL without NOTIFY).
		raw := h.raw(t)
		if _, err := raw.Exec(`UPDATE config_revision SET revision = 41 WHERE id = 1`); err != nil {
			t.Fatal(err)
		}
		next(t, ch, 41, 5*time.Second)
		// Close ends the watcher and closes the channel.
		s.Close()
		for range ch {
		}
	})
}

func TestWatchNotify(t *testing.T) {
	h := newHarness(t, "postgres")
	a, err := h.open(t, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := h.open(t, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := a.Watch(ctx)
	next(t, ch, 0, 5*time.Second)
	// The LISTEN connection is up once the poll it triggers has run; a
	// few writes make sure one lands after it.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		rev := insert(t, b, newConsumer(t, "c"+randomHex(4)))
		select {
		case got := <-ch:
			if got >= rev {
				return
			}
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Fatal("no revision from the other store's writes via LISTEN/NOTIFY")
}

// TestWatchRelisten drops the LISTEN connection: the watcher reconnects,
// polls at once (catching the write made meanwhile) and listens again.
func TestWatchRelisten(t *testing.T) {
	h := newHarness(t, "postgres")
	a, err := h.open(t, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := h.mustOpen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := a.Watch(ctx)
	next(t, ch, 0, 5*time.Second)
	raw := h.raw(t)
	// listeners counts (and with terminate, ends) the LISTEN connections,
	// waiting for one to appear.
	listeners := func(terminate bool) int {
		t.Helper()
		expr := "COUNT(pid)"
		if terminate {
			expr = "COUNT(pg_terminate_backend(pid))"
		}
		var n int
		deadline := time.Now().Add(5 * time.Second)
		for n == 0 && time.Now().Before(deadline) {
			err := raw.QueryRow(`SELECT ` + expr + ` FROM pg_stat_activity
				WHERE datname = current_database() AND query = 'LISTEN ` + notifyChannel + `'`).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				time.Sleep(20 * time.Millisecond) // the LISTEN is not up yet
			}
		}
		return n
	}
	if n := listeners(true); n != 1 {
		t.Fatalf("terminated %d LISTEN connections, want 1", n)
	}
	rev := insert(t, b, newConsumer(t, "during-outage"))
	next(t, ch, rev, 5*time.Second) // the poll after reconnecting
	if listeners(false) != 1 {
		t.Fatal("no LISTEN connection after reconnecting")
	}
	// No more polls or reconnects are due: only NOTIFY can deliver this.
	rev = insert(t, b, newConsumer(t, "after"))
	next(t, ch, rev, 5*time.Second)
}

func TestWatchAfterClose(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		s, err := h.open(t, 0)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, ok := <-s.Watch(context.Background()); ok {
			t.Errorf("Watch after Close delivered")
		}
		if _, err := s.Tx(context.Background(), func(Tx) error { return nil }); err != ErrClosed {
			t.Errorf("Tx after Close = %v, want ErrClosed", err)
		}
	})
}
