package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/datakit-gateway/datakit/gateway"
)

// TestUpstreamTLSVerifyDepth checks tls_verify_depth (gateway.md §8.9) on
// an upstream whose verified chain is leaf → root, one step long.
func TestUpstreamTLSVerifyDepth(t *testing.T) {
	root, leaf := twoCertChain(t)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secure")
	}))
	up.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected handshakes are the point
	up.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	up.StartTLS()
	t.Cleanup(up.Close)
	host, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	roots := x509.NewCertPool()
	roots.AddCert(root)
	trusted := setup{build: gateway.BuildOptions{UpstreamTLS: gateway.UpstreamTLS{RootCAs: roots}}}

	for _, tc := range []struct {
		depth string
		want  int
	}{
		{"0", http.StatusBadGateway},
		{"1", http.StatusOK},
		{"2", http.StatusOK},
	} {
		t.Run("depth "+tc.depth, func(t *testing.T) {
			doc := `_format_version: "3.0"
services:
  - name: svc
    protocol: https
    host: ` + host + `
    port: ` + port + `
    tls_verify_depth: ` + tc.depth + `
    routes: [{name: r, paths: [/]}]
`
			if r := send(t, startGateway(t, doc, trusted), request{target: "/"}); r.StatusCode != tc.want {
				t.Errorf("tls_verify_depth %s = %d %q, want %d", tc.depth, r.StatusCode, r.body, tc.want)
			}
		})
	}
}

// twoCertChain returns a root CA and a 127.0.0.1 server certificate it
// signed.
func twoCertChain(t *testing.T) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	now := time.Now()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "depth test root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, &leafKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return root, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
}
