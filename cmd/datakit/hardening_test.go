package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hardening catalogue cases (spec/hardening.md §3.3, §3.4) run against a
// whole node; the others live beside the tests they grew from
// (lifecycle_test.go, durability_test.go, outage_test.go,
// multinode_test.go).

// websocketEcho is an upstream that accepts a WebSocket handshake (RFC
// 6455 §4.2) and then echoes every byte until its peer closes.
func websocketEcho(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "websocket only", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			websocketAccept(r.Header.Get("Sec-WebSocket-Key")))
		if brw.Flush() != nil {
			return
		}
		_, _ = io.Copy(conn, brw)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func websocketAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// eventSource is an upstream sending one server-sent event every 20 ms
// until the request ends.
func eventSource(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil || rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestT45HijackedAndStreamingConnections: a WebSocket and a server-sent
// event stream run through the proxy; on SIGTERM the shutdown hook ends
// both cleanly — the WebSocket's connection closes (EOF, no reset), the
// stream ends with its last chunk (EOF, not a truncated body) — well before
// drain_timeout, and the node exits 0 without aborting anything.
func TestT45HijackedAndStreamingConnections(t *testing.T) {
	const drainTimeout = 5 * time.Second
	file := filepath.Join(t.TempDir(), "kong.yml")
	doc := "_format_version: \"3.0\"\nservices:\n" +
		"  - {name: ws, url: \"" + websocketEcho(t) + "\", routes: [{name: ws, paths: [/ws]}]}\n" +
		"  - {name: sse, url: \"" + eventSource(t) + "\", routes: [{name: sse, paths: [/sse]}]}\n"
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	addrs, exit := startNodeLogging(t, []string{"database=off", "declarative_config=" + file, "proxy_listen=127.0.0.1:0",
		"status_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0", "drain_timeout=" + drainTimeout.String()}, logs)

	// The WebSocket: handshake, one masked frame echoed.
	ws, err := net.DialTimeout("tcp", addrs[0], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetDeadline(time.Now().Add(drainTimeout + 5*time.Second))
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	fmt.Fprintf(ws, "GET /ws HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	wsr := bufio.NewReader(ws)
	resp, err := http.ReadResponse(wsr, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != websocketAccept(key) {
		t.Fatalf("WebSocket handshake through the proxy = %v %v", resp, err)
	}
	frame := []byte{0x81, 0x84, 1, 2, 3, 4, 'p' ^ 1, 'i' ^ 2, 'n' ^ 3, 'g' ^ 4} // FIN text "ping", masked
	if _, err := ws.Write(frame); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, len(frame))
	if _, err := io.ReadFull(wsr, echo); err != nil || string(echo) != string(frame) {
		t.Fatalf("WebSocket echo = %q %v, want the frame back", echo, err)
	}

	// The event stream: the first event arrives.
	sseResp, err := (&http.Client{Timeout: drainTimeout + 5*time.Second}).Get("http://" + addrs[0] + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer sseResp.Body.Close()
	sse := bufio.NewReader(sseResp.Body)
	if line, err := sse.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first event = %q %v", line, err)
	}

	signalSelf(t, syscall.SIGTERM)
	sent := time.Now()
	wsEnd := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, wsr)
		wsEnd <- err
	}()
	_, err = io.Copy(io.Discard, sse)
	if err != nil {
		t.Errorf("event stream ended with %v after %v, want a clean end (EOF after the last chunk)", err, time.Since(sent))
	}
	if err := <-wsEnd; err != nil {
		t.Errorf("WebSocket connection ended with %v after %v, want EOF", err, time.Since(sent))
	}
	t.Logf("streams ended %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit status = %d, want 0", code)
		}
	case <-time.After(drainTimeout + 5*time.Second):
		t.Fatal("node still running after drain_timeout")
	}
	if took := time.Since(sent); took >= drainTimeout {
		t.Errorf("drain took %v: the streams held it to drain_timeout %v", took, drainTimeout)
	}
	if strings.Contains(logs.String(), "drain timeout") {
		t.Errorf("log reports aborted requests:\n%s", logs)
	}
}
