// Command fake is the upstream and call target of the load scenarios in
// scripts/hardening (hardening.md §3): a small HTTP server on a loopback
// port it prints at start-up, counting requests and connections so a
// scenario can check that nothing stays held after it.
//
//	/ok            {"ok":true}
//	/ver           {"ver":"<-ver>"} with X-Ver: <-ver>
//	/slow?ms=N     {"ok":true} after N ms (default 2000), or when the client goes
//	/echo          reads the request body and answers {"bytes":N}
//	/big?bytes=N   N bytes (default 8 MiB), written in 32 KiB pieces
//	/stats         {"requests":…,"inflight":…,"conns_open":…,"conns_total":…}
//	               (the /stats request itself is not counted)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

type counters struct {
	requests, inflight, connsOpen, connsTotal atomic.Int64
}

func (c *counters) connState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		c.connsOpen.Add(1)
		c.connsTotal.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.connsOpen.Add(-1)
	}
}

// count wraps every handler but /stats.
func (c *counters) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		c.inflight.Add(1)
		defer c.inflight.Add(-1)
		h.ServeHTTP(w, r)
	})
}

func (c *counters) stats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]int64{"requests": c.requests.Load(), "inflight": c.inflight.Load(),
		"conns_open": c.connsOpen.Load(), "conns_total": c.connsTotal.Load()})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// intParam reads a non-negative integer query parameter, def when absent.
func intParam(r *http.Request, name string, def int64) (int64, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

func slow(w http.ResponseWriter, r *http.Request) {
	ms, ok := intParam(r, "ms", 2000)
	if !ok {
		http.Error(w, "bad ms", http.StatusBadRequest)
		return
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		writeJSON(w, map[string]bool{"ok": true})
	case <-r.Context().Done():
	}
}

func echo(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		return // the client went away mid-body
	}
	writeJSON(w, map[string]int64{"bytes": n})
}

func big(w http.ResponseWriter, r *http.Request) {
	n, ok := intParam(r, "bytes", 8<<20)
	if !ok {
		http.Error(w, "bad bytes", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	chunk := make([]byte, 32<<10)
	for i := range chunk {
		chunk[i] = 'x'
	}
	for n > 0 {
		k := min(n, int64(len(chunk)))
		if _, err := w.Write(chunk[:k]); err != nil {
			return
		}
		n -= k
	}
}

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "listen address (loopback)")
	ver := flag.String("ver", "0", "the version /ver answers")
	flag.Parse()

	c := &counters{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, map[string]bool{"ok": true}) })
	mux.HandleFunc("/ver", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Ver", *ver)
		writeJSON(w, map[string]string{"ver": *ver})
	})
	mux.HandleFunc("/slow", slow)
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/big", big)
	root := http.NewServeMux()
	root.HandleFunc("/stats", c.stats)
	root.Handle("/", c.count(mux))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake:", err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	srv := &http.Server{Handler: root, ConnState: c.connState, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "fake:", err)
		os.Exit(1)
	}
}
