package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/datakit-gateway/datakit/gateway"
	"github.com/datakit-gateway/datakit/gateway/config"
)

// pemPair is a fresh self-signed certificate for cn, as YAML-safe quoted
// PEM strings (JSON quoting is valid YAML).
func pemPair(t *testing.T, cn string) (certPEM, keyPEM string) {
	t.Helper()
	cert := newCertificate(t, cn)
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	quote := func(typ string, b []byte) string {
		q, _ := json.Marshal(string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})))
		return string(q)
	}
	return quote("CERTIFICATE", cert.Certificate[0]), quote("PRIVATE KEY", keyDER)
}

// buildSnapshot compiles a declarative document.
func buildSnapshot(t *testing.T, doc string) *gateway.Snapshot {
	t.Helper()
	plugins := gateway.NewPlugins()
	ents, err := config.LoadDeclarative([]byte(doc), config.LoadOptions{Plugins: plugins})
	if err != nil {
		t.Fatalf("LoadDeclarative = %v", err)
	}
	snap, err := gateway.Build(context.Background(), ents, gateway.BuildOptions{Plugins: plugins})
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	return snap
}

// TestTLSCertificatesBySNI: a TLS proxy listener without ssl_cert binds when
// a Certificate arrives, serves certificates by SNI in Kong's lookup order
// (exact, `*.` prefix, `.*` suffix), refuses unknown names, and routes by
// snis (gateway.md §2, §3.8, §7).
func TestTLSCertificatesBySNI(t *testing.T) {
	up := newUpstream(t, nil)
	host, port := up.hostPort()
	certA, keyA := pemPair(t, "cert-a")
	certB, keyB := pemPair(t, "cert-b")

	g := gateway.New(gateway.Options{Version: "test"})
	srv := gateway.NewServer(g, gateway.ServerOptions{Proxy: []gateway.ListenAddr{
		{Address: "127.0.0.1:0", TLS: g.ProxyTLSConfig(nil, false), AwaitCertificate: true}}})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if l := srv.Listeners(); len(l) != 1 || l[0].Bound || !l[0].SSL {
		t.Fatalf("Listeners before any certificate = %+v, want one unbound ssl listener", l)
	}

	g.Swap(buildSnapshot(t, `_format_version: "3.0"
certificates:
  - cert: `+certA+`
    key: `+keyA+`
    snis: [{name: exact.test}, {name: "*.wild.test"}]
  - cert: `+certB+`
    key: `+keyB+`
    snis: [{name: "api.*"}]
services:
  - name: svc
    host: `+host+`
    port: `+port+`
    routes:
      - {name: r, protocols: [https], snis: [exact.test]}
`))
	l := srv.Listeners()
	if len(l) != 1 || !l[0].Bound || strings.HasSuffix(l[0].Address, ":0") {
		t.Fatalf("Listeners after a certificate = %+v, want the listener bound", l)
	}
	addr := l[0].Address

	for _, tc := range []struct{ sni, wantCN string }{
		{"exact.test", "cert-a"}, {"EXACT.test.", "cert-a"}, {"a.wild.test", "cert-a"}, {"api.example", "cert-b"},
	} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true})
		if err != nil {
			t.Errorf("handshake with SNI %q = %v, want %s", tc.sni, err, tc.wantCN)
			continue
		}
		if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != tc.wantCN {
			t.Errorf("certificate for SNI %q = %s, want %s", tc.sni, cn, tc.wantCN)
		}
		_ = conn.Close()
	}
	if conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "unknown.test", InsecureSkipVerify: true}); err == nil {
		_ = conn.Close()
		t.Errorf("handshake with an unknown SNI succeeded, want unrecognized_name")
	} else if !strings.Contains(err.Error(), "unrecognized name") {
		t.Errorf("handshake with an unknown SNI = %v, want unrecognized name", err)
	}

	get := func(sni string) int {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true}}}
		defer client.CloseIdleConnections()
		resp, err := client.Get("https://" + addr + "/")
		if err != nil {
			t.Fatalf("GET with SNI %s: %v", sni, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("exact.test"); code != 200 {
		t.Errorf("GET with the route's SNI = %d, want 200", code)
	}
	if code := get("a.wild.test"); code != 404 {
		t.Errorf("GET with another SNI = %d, want 404", code)
	}
}

// TestUpstreamClientCertificateAndSNI: an https Service presents its
// client_certificate (else its Upstream's), and with preserve_host the SNI
// is the client's Host (gateway.md §8.9).
func TestUpstreamClientCertificateAndSNI(t *testing.T) {
	type hello struct{ sni, clientCN string }
	var mu sync.Mutex
	var seen []hello
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := hello{sni: r.TLS.ServerName}
		if len(r.TLS.PeerCertificates) > 0 {
			h.clientCN = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		mu.Lock()
		seen = append(seen, h)
		mu.Unlock()
	}))
	up.Config.ErrorLog = log.New(io.Discard, "", 0)
	up.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	up.StartTLS()
	t.Cleanup(up.Close)
	host, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	svcCert, svcKey := pemPair(t, "service-client")
	upCert, upKey := pemPair(t, "upstream-client")

	gw := startGateway(t, `_format_version: "3.0"
certificates:
  - {id: 2b7d1c8e-6c3c-4d0e-9a43-3f3f5d7e9a01, cert: `+svcCert+`, key: `+svcKey+`}
  - {id: 2b7d1c8e-6c3c-4d0e-9a43-3f3f5d7e9a02, cert: `+upCert+`, key: `+upKey+`}
upstreams:
  - name: pool
    client_certificate: {id: 2b7d1c8e-6c3c-4d0e-9a43-3f3f5d7e9a02}
    targets: [{target: "`+host+`:`+port+`"}]
services:
  - name: own
    protocol: https
    host: `+host+`
    port: `+port+`
    tls_verify: false
    client_certificate: {id: 2b7d1c8e-6c3c-4d0e-9a43-3f3f5d7e9a01}
    routes:
      - {name: keep, paths: [/keep], preserve_host: true}
      - {name: plain, paths: [/plain]}
  - name: pooled
    protocol: https
    host: pool
    tls_verify: false
    routes:
      - {name: pooled, paths: [/pooled]}
`, setup{})
	for _, tc := range []struct {
		path string
		want hello
	}{
		{"/keep", hello{"client.test", "service-client"}},
		{"/plain", hello{"", "service-client"}}, // an IP target sends no SNI
		{"/keep", hello{"client.test", "service-client"}},
		{"/pooled", hello{"", "upstream-client"}},
	} {
		r := send(t, gw, request{target: tc.path, host: "client.test"})
		if r.StatusCode != 200 {
			t.Fatalf("GET %s = %d %q, want 200", tc.path, r.StatusCode, r.body)
		}
		mu.Lock()
		got := seen[len(seen)-1]
		mu.Unlock()
		if got != tc.want {
			t.Errorf("GET %s: upstream saw SNI %q client certificate %q, want %q %q",
				tc.path, got.sni, got.clientCN, tc.want.sni, tc.want.clientCN)
		}
	}
}
