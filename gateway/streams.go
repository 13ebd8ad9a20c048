package gateway

import (
	"io"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
)

// streams are the proxy's long-lived exchanges: upgraded connections
// (WebSocket) and event streams. http.Server.Shutdown neither waits for a
// hijacked connection nor ends a response that never goes idle, so the
// server's shutdown hook (RegisterOnShutdown) ends them here and the drain
// then waits for their handlers (gateway.md §10.2).
type streams struct {
	mu      sync.Mutex
	closing bool
	open    map[stream]struct{}
}

// stream is one tracked exchange; end finishes it from another goroutine.
type stream interface{ end() }

// track wraps the body of an upgrade (101) or event-stream response so a
// shutdown can end it; other responses are left alone. The wrapper leaves
// the set when the proxy closes the body.
func (s *streams) track(resp *http.Response) {
	var st stream
	switch {
	case resp.StatusCode == http.StatusSwitchingProtocols:
		rwc, ok := resp.Body.(io.ReadWriteCloser)
		if !ok {
			return // the ReverseProxy refuses it anyway
		}
		u := &upgradedConn{ReadWriteCloser: rwc, s: s}
		resp.Body, st = u, u
	case isEventStream(resp.Header):
		e := &eventStream{ReadCloser: resp.Body, s: s}
		resp.Body, st = e, e
	default:
		return
	}
	s.mu.Lock()
	closing := s.closing
	if !closing {
		if s.open == nil {
			s.open = map[stream]struct{}{}
		}
		s.open[st] = struct{}{}
	}
	s.mu.Unlock()
	if closing {
		st.end() // started during the shutdown: ends at once
	}
}

func (s *streams) remove(st stream) {
	s.mu.Lock()
	delete(s.open, st)
	s.mu.Unlock()
}

// closeAll ends every tracked stream, and those that start afterwards.
func (s *streams) closeAll() {
	s.mu.Lock()
	s.closing = true
	open := make([]stream, 0, len(s.open))
	for st := range s.open {
		open = append(open, st)
	}
	s.mu.Unlock()
	for _, st := range open {
		st.end()
	}
}

func isEventStream(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "text/event-stream"
}

// upgradedConn is the upstream side of an upgraded connection. Closing it
// ends the ReverseProxy's copy, which then closes the client's connection.
type upgradedConn struct {
	io.ReadWriteCloser
	s *streams
}

func (c *upgradedConn) end() { _ = c.ReadWriteCloser.Close() }

func (c *upgradedConn) Close() error {
	c.s.remove(c)
	return c.ReadWriteCloser.Close()
}

// eventStream is an upstream event-stream body. Ended, it reads as EOF, so
// the ReverseProxy finishes the response normally: the client gets the
// last chunk, not a reset.
type eventStream struct {
	io.ReadCloser
	s     *streams
	ended atomic.Bool
}

func (e *eventStream) end() {
	e.ended.Store(true)
	_ = e.ReadCloser.Close() // unblocks a pending Read
}

func (e *eventStream) Read(p []byte) (int, error) {
	n, err := e.ReadCloser.Read(p)
	if err != nil && e.ended.Load() {
		err = io.EOF
	}
	return n, err
}

func (e *eventStream) Close() error {
	e.s.remove(e)
	return e.ReadCloser.Close()
}
