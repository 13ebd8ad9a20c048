package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// faultProxy is a TCP proxy on 127.0.0.1 that injects network faults
// between a node and PostgreSQL (hardening §3: latency, black hole, reset,
// refused). It is the part of internal/faultproxy these tests need.
type faultProxy struct {
	t      *testing.T
	target string
	addr   string // host:port the node dials

	mu      sync.Mutex
	ln      net.Listener // nil while refusing
	mode    faultMode
	latency time.Duration
	// cutListen drops what the server sends on connections that issued
	// LISTEN: notifications are lost, queries still pass.
	cutListen bool
	conns     map[*faultPair]struct{}
	wg        sync.WaitGroup
}

type faultMode int

const (
	faultPass      faultMode = iota
	faultLatency             // each chunk waits latency before it is passed on
	faultBlackHole           // bytes are read and dropped; new connections hang
	faultReset               // connections are reset, new ones at once
	faultRefuse              // the port is closed: connections are refused
)

// faultPair is one proxied connection.
type faultPair struct {
	client, server net.Conn // server is nil until dialled
	dropped        bool     // saw a black hole: the stream is broken
	listens        bool     // the client sent LISTEN
}

// newFaultProxy proxies a fresh 127.0.0.1 port to target until the test
// ends.
func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	p := &faultProxy{t: t, target: target, conns: map[*faultPair]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accept(c)
		}
	}()
}

func (p *faultProxy) accept(c net.Conn) {
	pair := &faultPair{client: c}
	p.mu.Lock()
	mode := p.mode
	pair.dropped = mode == faultBlackHole
	p.conns[pair] = struct{}{}
	p.mu.Unlock()
	switch mode {
	case faultReset:
		p.drop(pair)
		return
	case faultBlackHole:
		p.pump(pair, c, nil)
		return
	}
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		p.drop(pair)
		return
	}
	p.mu.Lock()
	pair.server = s
	p.mu.Unlock()
	p.pump(pair, c, s)
	p.pump(pair, s, c)
}

// pump copies src to dst (nil: nowhere) under the current mode.
func (p *faultProxy) pump(pair *faultPair, src, dst net.Conn) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.mu.Lock()
				mode, latency := p.mode, p.latency
				if mode == faultBlackHole {
					pair.dropped = true
				}
				if src == pair.client && bytes.Contains(buf[:n], []byte("LISTEN ")) {
					pair.listens = true
				}
				cut := p.cutListen && pair.listens && src == pair.server
				p.mu.Unlock()
				switch {
				case mode == faultBlackHole || dst == nil || cut:
					continue
				case mode == faultLatency:
					time.Sleep(latency)
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					err = werr
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					p.drop(pair)
				} else if dst != nil {
					_ = dst.(*net.TCPConn).CloseWrite()
				}
				return
			}
		}
	}()
}

// drop resets both sides of a pair.
func (p *faultProxy) drop(pair *faultPair) {
	p.mu.Lock()
	delete(p.conns, pair)
	conns := []net.Conn{pair.client, pair.server}
	p.mu.Unlock()
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN
			_ = tc.Close()
		}
	}
}

// set switches the proxy to mode. Reset drops every connection; refuse
// also closes the port; leaving a black hole resets the connections it
// broke; passing again re-opens a refused port.
func (p *faultProxy) set(mode faultMode, latency time.Duration) {
	p.t.Helper()
	p.mu.Lock()
	prev := p.mode
	p.mode, p.latency = mode, latency
	var drop []*faultPair
	for pair := range p.conns {
		if mode == faultReset || mode == faultRefuse || (prev == faultBlackHole && pair.dropped) {
			drop = append(drop, pair)
		}
	}
	ln := p.ln
	if mode == faultRefuse {
		p.ln = nil
	}
	p.mu.Unlock()
	for _, pair := range drop {
		p.drop(pair)
	}
	switch {
	case mode == faultRefuse && ln != nil:
		_ = ln.Close()
	case mode != faultRefuse && ln == nil:
		// The port was closed; take it again (nothing else binds it in
		// the moment it was free, or the test fails here).
		l, err := net.Listen("tcp", p.addr)
		if err != nil {
			p.t.Fatalf("faultproxy: re-listen on %s: %v", p.addr, err)
		}
		p.mu.Lock()
		p.serve(l)
		p.mu.Unlock()
	}
}

// setCutListen starts or stops dropping notifications.
func (p *faultProxy) setCutListen(cut bool) {
	p.mu.Lock()
	p.cutListen = cut
	p.mu.Unlock()
}

func (p *faultProxy) close() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	pairs := make([]*faultPair, 0, len(p.conns))
	for pair := range p.conns {
		pairs = append(pairs, pair)
	}
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for _, pair := range pairs {
		p.drop(pair)
	}
	p.wg.Wait()
}
