package nodes

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// testKeys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	rsa              *rsa.PrivateKey
	rsa2             *rsa.PrivateKey
	p256, p384, p521 *ecdsa.PrivateKey
	ed               ed25519.PrivateKey
}

var loadTestKeys = sync.OnceValue(func() *testKeys {
	must := func(k any, err error) any {
		if err != nil {
			panic(err)
		}
		return k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &testKeys{
		rsa:  must(rsa.GenerateKey(rand.Reader, 2048)).(*rsa.PrivateKey),
		rsa2: must(rsa.GenerateKey(rand.Reader, 2048)).(*rsa.PrivateKey),
		p256: must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)).(*ecdsa.PrivateKey),
		p384: must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)).(*ecdsa.PrivateKey),
		p521: must(ecdsa.GenerateKey(elliptic.P521(), rand.Reader)).(*ecdsa.PrivateKey),
		ed:   ed,
	}
})

// keyFor returns the private key the test suite uses for alg.
func (k *testKeys) keyFor(alg string) crypto.Signer {
	switch alg[:2] {
	case "RS", "PS":
		return k.rsa
	case "Ed":
		return k.ed
	}
	switch alg {
	case "ES256":
		return k.p256
	case "ES384":
		return k.p384
	}
	return k.p521
}

func pemBlock(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func pkcs8PEM(t testing.TB, k any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

func pkixPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PUBLIC KEY", der)
}

func sec1PEM(t testing.TB, k *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("EC PRIVATE KEY", der)
}

func certPEM(t testing.TB, k crypto.Signer) string {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jwt"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der)
}

// jwkObject returns k as a decoded JWK, with extra members set.
func jwkObject(t testing.TB, k any, extra ...string) map[string]any {
	t.Helper()
	key, err := jwk.Import(k)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if err := key.Set(extra[i], extra[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(key)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func jwks(keys ...map[string]any) map[string]any {
	arr := make([]any, len(keys))
	for i, k := range keys {
		arr[i] = k
	}
	return map[string]any{"keys": arr}
}

func jsonString(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
