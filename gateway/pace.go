package gateway

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// pace holds the client deadlines net/http has no server field for
// (hardening.md §2.1): the longest pause between two body reads or two
// writes, and the longest whole body. They are set per operation on the
// connection (what http.ResponseController does): ReadTimeout and
// WriteTimeout would cap the whole exchange, upstream latency and streaming
// included.
type pace struct {
	body, send, bodyMax time.Duration
}

// deadliner is the part of net/http's HTTP/1 and HTTP/2 ResponseWriters that
// sets the connection's (or stream's) deadlines.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// handler applies the pace to every request h serves.
func (p pace) handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dl, ok := w.(deadliner)
		if !ok { // not net/http's own writer: nothing to set deadlines on
			h.ServeHTTP(w, r)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &pacedBody{ReadCloser: r.Body, dl: dl, pause: p.body, end: time.Now().Add(p.bodyMax)}
		}
		h.ServeHTTP(&pacedWriter{ResponseWriter: w, dl: dl, pause: p.send}, r)
	})
}

// rearm reports whether a deadline last set to *last should move to next,
// and records it. Re-arming costs a runtime timer update under a lock, so a
// deadline that would move by no more than 1/128 of its timeout stays where
// it is: it may then fire that much early (under 0.8 %).
func rearm(last *time.Time, next time.Time, timeout time.Duration) bool {
	if next.Sub(*last) <= timeout>>7 {
		return false
	}
	*last = next
	return true
}

// pacedBody is a client body read under client_body_timeout (pause) and
// client_body_max_duration (end). Reads come from the upstream transport's
// goroutine while the handler may ask whether the body expired, hence the
// lock.
type pacedBody struct {
	io.ReadCloser
	dl    deadliner
	pause time.Duration
	end   time.Time

	mu       sync.Mutex
	deadline time.Time // the read deadline in force
	reading  bool      // a Read is in progress, or the last one failed
}

func (b *pacedBody) Read(p []byte) (int, error) {
	next := time.Now().Add(b.pause)
	if next.After(b.end) {
		next = b.end
	}
	b.mu.Lock()
	if rearm(&b.deadline, next, b.pause) {
		_ = b.dl.SetReadDeadline(next)
	}
	b.reading = true
	b.mu.Unlock()
	n, err := b.ReadCloser.Read(p)
	if err == nil || errors.Is(err, io.EOF) {
		b.mu.Lock()
		b.reading = false
		if err != nil {
			// The body is over: no deadline may hit the connection's next
			// read (net/http's background read that watches for a hang-up).
			b.deadline = time.Time{}
			_ = b.dl.SetReadDeadline(time.Time{})
		}
		b.mu.Unlock()
	}
	return n, err
}

// expired reports whether the client let a read deadline pass. It does not
// rely on the failed Read having returned: net/http cancels the request's
// context from inside that Read, so the handler may see the cancellation
// first.
func (b *pacedBody) expired() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reading && !b.deadline.IsZero() && !time.Now().Before(b.deadline)
}

// bodyExpired reports whether body is a paced client body whose deadline
// passed (client_body_timeout or client_body_max_duration).
func bodyExpired(body io.Reader) bool {
	pb, ok := body.(*pacedBody)
	return ok && pb.expired()
}

// pacedWriter is a response written under client_send_timeout.
type pacedWriter struct {
	http.ResponseWriter
	dl    deadliner
	pause time.Duration
	armed time.Time
}

func (w *pacedWriter) arm() {
	if next := time.Now().Add(w.pause); rearm(&w.armed, next, w.pause) {
		_ = w.dl.SetWriteDeadline(next)
	}
}

func (w *pacedWriter) Write(p []byte) (int, error) {
	w.arm()
	return w.ResponseWriter.Write(p)
}

// FlushError lets a flush of buffered headers or data wait no longer than a
// write (http.ResponseController finds it).
func (w *pacedWriter) FlushError() error {
	w.arm()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection (hijacks).
func (w *pacedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
