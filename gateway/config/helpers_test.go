package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s mismatch:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// fakeSchemas stands in for the plugin registry: key-auth validates like
// the real one (field errors, forbids consumer), datakit returns a list of
// engine-style messages, prometheus accepts anything.
type fakeSchemas struct{}

func (fakeSchemas) PluginSchema(name string) (PluginSchema, bool) {
	switch name {
	case "key-auth":
		return PluginSchema{NoConsumer: true}, true
	case "datakit", "prometheus":
		return PluginSchema{}, true
	}
	return PluginSchema{}, false
}

func (fakeSchemas) ValidatePluginConfig(p Plugin) (map[string]any, error) {
	out := map[string]any{}
	for k, v := range p.Config {
		out[k] = v
	}
	switch p.Name {
	case "key-auth":
		errs := &FieldErrors{}
		if _, ok := out["key_names"]; !ok {
			out["key_names"] = []any{"apikey"}
		}
		if names, ok := out["key_names"].([]any); ok {
			for i, n := range names {
				if s, _ := n.(string); checkHeaderName(s) != "" || s == "" {
					errs.Field("key_names").Index(i).Addf("bad header name '%v', allowed characters are A-Z, a-z, 0-9, '_', and '-'", n)
				}
			}
		}
		if _, ok := out["hide_credentials"]; !ok {
			out["hide_credentials"] = false
		}
		return out, errs.Err()
	case "datakit":
		nodes, _ := out["nodes"].([]any)
		if len(nodes) == 0 {
			return nil, errors.Join(errors.New("nodes: at least one node is required"))
		}
		var errs []error
		for i, n := range nodes {
			m, _ := n.(map[string]any)
			if _, ok := m["name"]; !ok {
				errs = append(errs, fmt.Errorf("nodes[%d]: name: required", i+1))
			}
			if _, ok := m["type"]; !ok {
				errs = append(errs, fmt.Errorf("nodes[%d]: type: required", i+1))
			}
		}
		return out, errors.Join(errs...)
	}
	return out, nil
}

// testCert returns a self-signed PEM certificate and key; ed25519 gives a
// second key type for cert_alt tests.
func testCert(t testing.TB, cn string, ed bool) (certPEM, keyPEM string) {
	t.Helper()
	var pub, priv any
	if ed {
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub, priv = p, k
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub, priv = &k.PublicKey, k
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4e9, 0), DNSNames: []string{cn},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}))
}

// zeroRand is a deterministic source for ids and keys in golden tests.
type zeroRand struct{ n byte }

func (z *zeroRand) Read(p []byte) (int, error) {
	for i := range p {
		z.n++
		p[i] = z.n
	}
	return len(p), nil
}

// fixedNow is the load time in tests.
var fixedNow = time.Unix(1700000000, 123e6)
