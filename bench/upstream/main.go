// Command upstream is the load harness's origin server: a tiny HTTP server
// with fixed JSON answers and no logging, so that it costs as little CPU as
// possible next to the load generator (see bench/README.md).
//
//	/            {"ok":true,"service":"upstream"}
//	/auth-token  {"token_type":"Bearer","access_token":"abc"}
//	/a /b /c     small JSON bodies for the fan-out workload
//	/headers     the request headers as JSON (run.sh checks each workload
//	             with it before loading it)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func body(s string) http.HandlerFunc {
	b := []byte(s)
	length := []string{strconv.Itoa(len(b))}
	ctype := []string{"application/json"}
	return func(w http.ResponseWriter, r *http.Request) {
		// Drain a request body (the token call posts a form) so the
		// connection stays reusable.
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		h := w.Header()
		h["Content-Type"] = ctype
		h["Content-Length"] = length
		_, _ = w.Write(b)
	}
}

func headers(w http.ResponseWriter, r *http.Request) {
	h := map[string]string{"Host": r.Host}
	for k, v := range r.Header {
		h[k] = strings.Join(v, ", ")
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(h)
}

func main() {
	addr := flag.String("listen", "127.0.0.1:9100", "listen address (loopback)")
	flag.Parse()

	mux := http.NewServeMux()
	mux.Handle("/auth-token", body(`{"token_type":"Bearer","access_token":"abc"}`))
	mux.Handle("/a", body(`{"id":"a","value":1}`))
	mux.Handle("/b", body(`{"id":"b","value":2}`))
	mux.Handle("/c", body(`{"id":"c","value":3}`))
	mux.HandleFunc("/headers", headers)
	mux.Handle("/", body(`{"ok":true,"service":"upstream"}`))

	srv := &http.Server{
		Addr:     *addr,
		Handler:  mux,
		ErrorLog: log.New(io.Discard, "", 0),
		// Like the gateway's client_header_timeout: no listener without one.
		ReadHeaderTimeout: 10 * time.Second,
	}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}
