package gateway_test

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkProxy is the plain proxy path through the real handler and a
// loopback upstream; the load harness (make bench-proxy) measures the same
// against nginx.
func BenchmarkProxy(b *testing.B) {
	up := newUpstream(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	gw := startGateway(b, serviceDoc(up, "", "      - {name: r, paths: [/]}\n"), setup{})
	client := gw.Client()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get(gw.URL + "/x")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
