package nodes

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/datakit-gateway/datakit/engine"
)

// jwtNow is the clock of every JWT test.
var jwtNow = time.Unix(1700000000, 0)

const jwtT = 1700000000

var jwtDeps = Deps{Now: func() time.Time { return jwtNow }}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// makeToken builds a token from header and payload JSON text, signed by sign
// (nil: the signature segment is "sig").
func makeToken(header, payload string, sign func(input []byte) []byte) string {
	input := b64(header) + "." + b64(payload)
	sig := b64("sig")
	if sign != nil {
		sig = base64.RawURLEncoding.EncodeToString(sign([]byte(input)))
	}
	return input + "." + sig
}

// signWith signs with jwsbb, as an attacker with the key would.
func signWith(t testing.TB, alg string, key any) func([]byte) []byte {
	return func(input []byte) []byte {
		sig, err := jwsbb.Sign(key, alg, input, nil)
		if err != nil {
			t.Fatalf("jwsbb.Sign(%s) = %v", alg, err)
		}
		return sig
	}
}

func hs256(secret string) func([]byte) []byte {
	return func(input []byte) []byte {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(input)
		return m.Sum(nil)
	}
}

func runSign(t *testing.T, attrs map[string]any, claims, key any) ([]any, error) {
	t.Helper()
	n := mustBuild(t, jwtSignKind(jwtDeps), attrs, jwtSignInputs, true)
	return n.Run(context.Background(), testEnv(nil), []any{claims, key})
}

func runVerify(t *testing.T, attrs map[string]any, token, key any) ([]any, error) {
	t.Helper()
	n := mustBuild(t, jwtVerifyKind(jwtDeps), attrs, jwtVerifyInputs, true)
	return n.Run(context.Background(), testEnv(nil), []any{token, key})
}

// segments decodes a token's header and payload text.
func segments(t *testing.T, token string) (header, payload string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d segments", token, len(parts))
	}
	h, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	p, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("token %q: %v %v", token, err1, err2)
	}
	return string(h), string(p)
}

func TestJWTDecodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		kind  engine.Kind
		attrs map[string]any
		want  []string
	}{
		{"sign: algorithm missing", jwtSignKind(jwtDeps), map[string]any{}, []string{"algorithm: required field missing"}},
		{"sign: algorithm none", jwtSignKind(jwtDeps), map[string]any{"algorithm": "none"},
			[]string{`algorithm: must be one of: ES256, ES384, ES512, EdDSA, HS256, HS384, HS512, PS256, PS384, PS512, RS256, RS384, RS512; got "none"`}},
		{"sign: ranges", jwtSignKind(jwtDeps), map[string]any{"algorithm": "HS256", "expires_in": 0, "not_before": -1},
			[]string{"expires_in: must be at least 1, got 0", "not_before: must be at least 0, got -1"}},
		{"sign: static_claims", jwtSignKind(jwtDeps), map[string]any{"algorithm": "HS256", "static_claims": map[string]any{"n": 1}},
			[]string{"static_claims.n: expected string, got number"}},
		{"sign: unknown", jwtSignKind(jwtDeps), map[string]any{"algorithm": "HS256", "issuers": []any{"x"}},
			[]string{"issuers: unknown field"}},
		{"verify: allowed_algorithms", jwtVerifyKind(jwtDeps), map[string]any{"allowed_algorithms": []any{"RS256", "none"}},
			[]string{`allowed_algorithms[1]: must be one of: ES256, ES384, ES512, EdDSA, HS256, HS384, HS512, PS256, PS384, PS512, RS256, RS384, RS512; got "none"`}},
		{"verify: allowed_algorithms positions", jwtVerifyKind(jwtDeps), map[string]any{"allowed_algorithms": []any{1, "RS256", "rs256"}},
			[]string{"allowed_algorithms[0]: expected string, got number",
				`allowed_algorithms[2]: must be one of: ES256, ES384, ES512, EdDSA, HS256, HS384, HS512, PS256, PS384, PS512, RS256, RS384, RS512; got "rs256"`}},
		{"verify: types", jwtVerifyKind(jwtDeps), map[string]any{"issuers": "kong", "leeway": -1, "validate_exp": "no"},
			[]string{"issuers: expected array, got string", "leeway: must be at least 0, got -1", "validate_exp: expected boolean, got string"}},
		{"decode: no attributes", jwtDecodeKind(), map[string]any{"algorithm": "HS256"}, []string{"algorithm: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := decodeForTest(tt.kind, tt.attrs)
			if got := errStrings(errs); !slices.Equal(got, tt.want) {
				t.Errorf("Decode(%v) = %q, want %q", tt.attrs, got, tt.want)
			}
		})
	}
}

func TestJWTDecls(t *testing.T) {
	all := engine.KeyInput | engine.KeyInputs | engine.KeyOutput | engine.KeyOutputs
	d, _ := decodeForTest(jwtSignKind(jwtDeps), map[string]any{"algorithm": "HS256"})
	if d.IO != all || !slices.Equal(d.Inputs, jwtSignInputs) || !slices.Equal(d.Outputs, jwtSignOutputs) {
		t.Errorf("jwt_sign Decl = %+v", d)
	}
	d, _ = decodeForTest(jwtVerifyKind(jwtDeps), map[string]any{})
	if d.IO != all || !slices.Equal(d.Inputs, jwtVerifyInputs) || !slices.Equal(d.Outputs, jwtVerifyOutputs) {
		t.Errorf("jwt_verify Decl = %+v", d)
	}
	d, _ = decodeForTest(jwtDecodeKind(), map[string]any{})
	if d.IO != engine.KeyInput|engine.KeyOutput|engine.KeyOutputs || d.Input != engine.TypeString ||
		!slices.Equal(d.Outputs, jwtDecodeOutputs) {
		t.Errorf("jwt_decode Decl = %+v", d)
	}
}

// §13.11: HS256 with a vault secret, static iss, sub from the consumer.
func TestJWTSign1311(t *testing.T) {
	attrs := map[string]any{"algorithm": "HS256", "expires_in": 300, "static_claims": map[string]any{"iss": "kong"}}
	out, err := runSign(t, attrs, map[string]any{"sub": "C"}, "k3y")
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	token := out[0].(string)
	h, p := segments(t, token)
	if want := `{"alg":"HS256","typ":"JWT"}`; h != want {
		t.Errorf("header = %s, want %s", h, want)
	}
	if want := `{"exp":1700000300,"iat":1700000000,"iss":"kong","nbf":1700000000,"sub":"C"}`; p != want {
		t.Errorf("payload = %s, want %s", p, want)
	}
	input := token[:strings.LastIndexByte(token, '.')]
	if sig := base64.RawURLEncoding.EncodeToString(hs256("k3y")([]byte(input))); !strings.HasSuffix(token, "."+sig) {
		t.Errorf("token %s: signature is not HS256 with k3y (%s)", token, sig)
	}
	wantClaims := map[string]any{"exp": jwtT + 300, "iat": jwtT, "iss": "kong", "nbf": jwtT, "sub": "C"}
	if !reflect.DeepEqual(out[1], wantClaims) || !reflect.DeepEqual(out[2], map[string]any{"alg": "HS256", "typ": "JWT"}) {
		t.Errorf("claims, header = %v, %v; want %v", out[1], out[2], wantClaims)
	}
	// jwt_verify with that key and issuers: [kong] accepts it.
	vout, err := runVerify(t, map[string]any{"issuers": []any{"kong"}}, "Bearer "+token, "k3y")
	if err != nil || !reflect.DeepEqual(vout[0], wantClaims) || !reflect.DeepEqual(vout[1], map[string]any{"alg": "HS256", "typ": "JWT"}) {
		t.Errorf("verify = %v, %v; want %v", vout, err, wantClaims)
	}
}

func TestJWTSignClaims(t *testing.T) {
	attrs := map[string]any{"algorithm": "HS384", "expires_in": 60, "not_before": 10, "kid": "k-1", "typ": "at+jwt",
		"static_claims": map[string]any{"iss": "kong", "aud": "a"}}
	in := map[string]any{"aud": []any{"x", "y"}, "exp": 1, "iat": "no", "n": map[string]any{"z": 1, "a": nil}}
	out, err := runSign(t, attrs, in, "secret")
	if err != nil {
		t.Fatal(err)
	}
	h, p := segments(t, out[0].(string))
	if want := `{"alg":"HS384","kid":"k-1","typ":"at+jwt"}`; h != want {
		t.Errorf("header = %s, want %s", h, want)
	}
	if want := `{"aud":["x","y"],"exp":1700000060,"iat":1700000000,"iss":"kong","n":{"a":null,"z":1},"nbf":1700000010}`; p != want {
		t.Errorf("payload = %s, want %s", p, want)
	}
	if in["exp"] != 1 || len(in) != 4 {
		t.Errorf("the claims input was modified: %v", in)
	}
	// Huge lifetimes saturate instead of wrapping around.
	out, err = runSign(t, map[string]any{"algorithm": "HS256", "expires_in": int64(math.MaxInt64)}, nil, "secret")
	if _, p := segments(t, out[0].(string)); err != nil || !strings.Contains(p, `"exp":9223372036854775807`) {
		t.Errorf("payload = %s, %v, want exp 9223372036854775807", p, err)
	}
	// Without a claims input, only the static claims and the times.
	out, err = runSign(t, map[string]any{"algorithm": "HS256"}, nil, "secret")
	if _, p := segments(t, out[0].(string)); err != nil || p != `{"exp":1700000300,"iat":1700000000,"nbf":1700000000}` {
		t.Errorf("payload = %s, %v", p, err)
	}
}

// Every algorithm, every key format: what jwt_sign signs, jwt_verify accepts.
func TestJWTSignVerifyRoundTrip(t *testing.T) {
	keys := loadTestKeys()
	type keyPair struct {
		name            string
		private, public any
	}
	for _, alg := range jwtAlgorithms {
		var pairs []keyPair
		if strings.HasPrefix(alg, "HS") {
			pairs = []keyPair{
				{"secret", "s3cr3t-" + alg, "s3cr3t-" + alg},
				{"oct JWK / JWKS", jwkObject(t, []byte("oct-secret"), "kid", "o1"), jwks(jwkObject(t, []byte("oct-secret"), "kid", "o1"))},
				{"oct JWK text", jsonString(t, jwkObject(t, []byte("oct"))), jsonString(t, jwkObject(t, []byte("oct")))},
			}
		} else {
			priv := keys.keyFor(alg)
			pairs = []keyPair{
				{"PKCS#8 / PKIX", pkcs8PEM(t, priv), pkixPEM(t, priv.Public())},
				{"PKCS#8 / certificate", pkcs8PEM(t, priv), certPEM(t, priv)},
				{"JWK / JWK", jwkObject(t, priv), jwkObject(t, priv.Public())},
				{"JWK text / JWKS text", jsonString(t, jwkObject(t, priv, "kid", "a")),
					jsonString(t, jwks(jwkObject(t, keys.rsa2.Public(), "kid", "b"), jwkObject(t, priv.Public(), "kid", "a")))},
				{"JWK / JWKS without kid", jwkObject(t, priv), jwks(jwkObject(t, keys.rsa2.Public()), jwkObject(t, keys.p256.Public()),
					jwkObject(t, keys.ed.Public()), jwkObject(t, priv.Public()))},
				{"PKCS#8 / private PEM", pkcs8PEM(t, priv), pkcs8PEM(t, priv)},
			}
			switch alg[:2] {
			case "RS", "PS":
				pairs = append(pairs, keyPair{"PKCS#1 / PKCS#1", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(keys.rsa)),
					pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&keys.rsa.PublicKey))})
			case "ES":
				pairs = append(pairs, keyPair{"SEC1 / PKIX", sec1PEM(t, priv.(*ecdsa.PrivateKey)), pkixPEM(t, priv.Public())})
			}
		}
		for _, kp := range pairs {
			t.Run(alg+" "+kp.name, func(t *testing.T) {
				out, err := runSign(t, map[string]any{"algorithm": alg}, map[string]any{"sub": "alice"}, kp.private)
				if err != nil {
					t.Fatalf("sign = %v", err)
				}
				token := out[0].(string)
				vout, err := runVerify(t, map[string]any{"allowed_algorithms": []any{alg}, "required_claims": []any{"sub"}}, token, kp.public)
				if err != nil {
					t.Fatalf("verify(%s) = %v", token, err)
				}
				if vout[0].(map[string]any)["sub"] != "alice" || vout[1].(map[string]any)["alg"] != alg {
					t.Errorf("verify = %v", vout)
				}
				// One bit off in the signature fails.
				sig := []byte(token[strings.LastIndexByte(token, '.')+1:])
				sig[2] ^= 1
				bad := token[:strings.LastIndexByte(token, '.')+1] + string(sig)
				if _, err := runVerify(t, nil, bad, kp.public); errText(err) != "signature verification failed" &&
					errText(err) != "malformed token" {
					t.Errorf("verify(tampered) = %v, want signature verification failed", err)
				}
			})
		}
	}
}

// A JWK's kid goes into the header unless kid is configured.
func TestJWTSignKid(t *testing.T) {
	k := jwkObject(t, loadTestKeys().p256, "kid", "from-jwk")
	out, err := runSign(t, map[string]any{"algorithm": "ES256"}, nil, k)
	if h, _ := segments(t, out[0].(string)); err != nil || h != `{"alg":"ES256","kid":"from-jwk","typ":"JWT"}` {
		t.Errorf("header = %s, %v", h, err)
	}
	out, err = runSign(t, map[string]any{"algorithm": "ES256", "kid": "attr"}, nil, k)
	if h, _ := segments(t, out[0].(string)); err != nil || h != `{"alg":"ES256","kid":"attr","typ":"JWT"}` {
		t.Errorf("header = %s, %v", h, err)
	}
}

func TestJWTSignErrors(t *testing.T) {
	keys := loadTestKeys()
	tests := []struct {
		alg  string
		key  any
		want string
	}{
		{"HS256", nil, "key is required"},
		{"HS256", "", "key is required"},
		{"HS256", "  \n", "key is required"},
		{"RS256", nil, "key is required"},
		{"HS256", pkcs8PEM(t, keys.rsa), "key does not match algorithm HS256"},
		{"HS256", pkixPEM(t, keys.rsa.Public()), "key does not match algorithm HS256"},
		{"HS256", jwkObject(t, keys.rsa), "key does not match algorithm HS256"},
		{"HS256", jwks(jwkObject(t, []byte("x"))), "key does not match algorithm HS256"},
		{"RS256", "secret", "key does not match algorithm RS256"},
		{"RS256", pkixPEM(t, keys.rsa.Public()), "key does not match algorithm RS256"},
		{"RS256", certPEM(t, keys.rsa), "key does not match algorithm RS256"},
		{"RS256", jwkObject(t, keys.rsa.Public()), "key does not match algorithm RS256"},
		{"RS256", pkcs8PEM(t, keys.p256), "key does not match algorithm RS256"},
		{"RS256", jwkObject(t, keys.rsa, "alg", "PS256"), "key does not match algorithm RS256"},
		{"PS256", jwkObject(t, []byte("x")), "key does not match algorithm PS256"},
		{"ES256", sec1PEM(t, keys.p384), "key does not match algorithm ES256"},
		{"ES512", pkcs8PEM(t, keys.p256), "key does not match algorithm ES512"},
		{"EdDSA", pkcs8PEM(t, keys.rsa), "key does not match algorithm EdDSA"},
		{"EdDSA", jwkObject(t, keys.ed.Public()), "key does not match algorithm EdDSA"},
		{"RS256", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "invalid key: invalid PEM private key"},
		{"RS256", "-----BEGIN PRIVATE KEY-----\nnot base64", "invalid key: invalid PEM"},
		{"RS256", pemBlock("OPENSSH PRIVATE KEY", []byte{1}), `invalid key: unsupported PEM block "OPENSSH PRIVATE KEY"`},
		{"RS256", map[string]any{"kty": "RSA", "n": "AQAB"}, "invalid key: invalid JWK"},
		{"RS256", 42, "invalid key: expected a string or an object, got number"},
	}
	for _, tt := range tests {
		t.Run(tt.alg+" "+tt.want, func(t *testing.T) {
			_, err := runSign(t, map[string]any{"algorithm": tt.alg}, nil, tt.key)
			if errText(err) != tt.want {
				t.Errorf("Run(%s, %.40v) = %v, want %q", tt.alg, tt.key, err, tt.want)
			}
		})
	}
}

func TestJWTVerifyErrors(t *testing.T) {
	keys := loadTestKeys()
	rsaPub := pkixPEM(t, keys.rsa.Public())
	claims := func(extra string) string { return `{"sub":"alice"` + extra + `}` }
	hsTok := func(payload string) string { return makeToken(`{"alg":"HS256","typ":"JWT"}`, payload, hs256("k")) }
	rsTok := func(kid, payload string) string {
		h := `{"alg":"RS256"}`
		if kid != "" {
			h = `{"alg":"RS256","kid":"` + kid + `"}`
		}
		return makeToken(h, payload, signWith(t, "RS256", keys.rsa))
	}
	set := jwks(jwkObject(t, keys.rsa.Public(), "kid", "k1"), jwkObject(t, keys.p256.Public(), "kid", "k3"))
	tests := []struct {
		name  string
		attrs map[string]any
		token any
		key   any
		want  string
	}{
		{"token null", nil, nil, "k", "token is missing"},
		{"token empty", nil, "", "k", "token is missing"},
		{"bearer only", nil, "Bearer ", "k", "token is missing"},
		{"two segments", nil, "a.b", "k", "malformed token"},
		{"four segments", nil, "a.b.c.d", "k", "malformed token"},
		{"not base64", nil, "a!.b.c", "k", "malformed token"},
		{"padded base64", nil, b64(`{"alg":"HS256"}`) + "=." + b64("{}") + ".", "k", "malformed token"},
		{"header not JSON", nil, b64("x") + "." + b64("{}") + ".", "k", "malformed token"},
		{"payload an array", nil, b64(`{"alg":"HS256"}`) + "." + b64("[1]") + ".", "k", "malformed token"},
		{"signature not base64", nil, b64(`{"alg":"HS256"}`) + "." + b64("{}") + ".a+b", "k", "malformed token"},
		{"no alg", nil, makeToken(`{"typ":"JWT"}`, "{}", nil), "k", "malformed token"},
		{"alg not a string", nil, makeToken(`{"alg":1}`, "{}", nil), "k", "malformed token"},
		{"over 8 KiB", nil, hsTok(`{"x":"` + strings.Repeat("a", 6200) + `"}`), "k", "malformed token"},
		{"not a string", nil, 5, "k", "malformed token"},
		{"alg none", nil, b64(`{"alg":"none"}`) + "." + b64("{}") + ".", "k", `algorithm "none" is not allowed`},
		{"alg NONE", nil, b64(`{"alg":"NONE"}`) + "." + b64("{}") + ".", rsaPub, `algorithm "NONE" is not allowed`},
		{"alg none with allowed list", map[string]any{"allowed_algorithms": []any{"HS256"}},
			b64(`{"alg":"none"}`) + "." + b64("{}") + ".", "k", `algorithm "none" is not allowed`},
		{"unsupported alg", nil, makeToken(`{"alg":"HS1"}`, "{}", nil), "k", `algorithm "HS1" is not allowed`},
		{"not in allowed", map[string]any{"allowed_algorithms": []any{"RS256"}}, hsTok("{}"), "k", `algorithm "HS256" is not allowed`},
		{"key null", nil, hsTok("{}"), nil, "key is required"},
		{"key empty", nil, hsTok("{}"), " ", "key is required"},
		{"key a number", nil, hsTok("{}"), 1, "invalid key: expected a string or an object, got number"},
		{"JWKS keys not an array", nil, hsTok("{}"), map[string]any{"keys": "x"}, "invalid key: JWKS keys must be an array"},
		// Algorithm confusion: the token never picks the kind of key.
		{"HS256 with an RSA public key PEM", nil,
			makeToken(`{"alg":"HS256"}`, "{}", hs256(rsaPub)), rsaPub, "key does not match algorithm HS256"},
		{"HS256 with an RSA certificate", nil,
			makeToken(`{"alg":"HS256"}`, "{}", hs256(certPEM(t, keys.rsa))), certPEM(t, keys.rsa), "key does not match algorithm HS256"},
		{"HS256 with an RSA JWK", nil, hsTok("{}"), jwkObject(t, keys.rsa.Public()), "key does not match algorithm HS256"},
		{"HS256 with an RSA JWKS", nil, hsTok("{}"), set, "no matching key in JWKS"},
		{"RS256 with a secret", nil, rsTok("", "{}"), "k", "key does not match algorithm RS256"},
		{"ES256 with a P-384 key", nil, makeToken(`{"alg":"ES256"}`, "{}", signWith(t, "ES384", keys.p384)),
			pkixPEM(t, keys.p384.Public()), "key does not match algorithm ES256"},
		{"EdDSA with an RSA key", nil, makeToken(`{"alg":"EdDSA"}`, "{}", nil), rsaPub, "key does not match algorithm EdDSA"},
		{"PS256 with an EC JWK", nil, makeToken(`{"alg":"PS256"}`, "{}", nil), jwkObject(t, keys.p256.Public()),
			"key does not match algorithm PS256"},
		{"JWK alg differs", nil, rsTok("", "{}"), jwkObject(t, keys.rsa.Public(), "alg", "RS512"), "key does not match algorithm RS256"},
		{"JWK for encryption", nil, rsTok("", "{}"), jwkObject(t, keys.rsa.Public(), "use", "enc"), "key does not match algorithm RS256"},
		{"kid not in JWKS", nil, rsTok("k2", "{}"), set, "no matching key in JWKS"},
		{"kid names a key of another family", nil, rsTok("k3", "{}"), set, "key does not match algorithm RS256"},
		{"no compatible key in JWKS", nil, makeToken(`{"alg":"EdDSA"}`, "{}", nil), set, "no matching key in JWKS"},
		{"empty JWKS", nil, rsTok("", "{}"), `{"keys":[]}`, "no matching key in JWKS"},
		{"wrong RSA key", nil, rsTok("", "{}"), pkixPEM(t, keys.rsa2.Public()), "signature verification failed"},
		{"wrong secret", nil, hsTok("{}"), "K", "signature verification failed"},
		{"JWKS: key of the kid is wrong", nil, makeToken(`{"alg":"RS256","kid":"k1"}`, "{}", signWith(t, "RS256", keys.rsa2)), set,
			"signature verification failed"},
		{"expired", nil, hsTok(`{"exp":1699999999}`), "k", "token expired"},
		{"expired despite leeway", map[string]any{"leeway": 10}, hsTok(`{"exp":1699999989}`), "k", "token expired"},
		{"expired fraction", nil, hsTok(`{"exp":1699999999.5}`), "k", "token expired"},
		{"exp not a number", nil, hsTok(`{"exp":"soon"}`), "k", "malformed token"},
		{"not yet valid", nil, hsTok(`{"nbf":1700000001}`), "k", "token not yet valid"},
		{"not yet valid despite leeway", map[string]any{"leeway": 5}, hsTok(`{"nbf":1700000006}`), "k", "token not yet valid"},
		{"nbf not a number", nil, hsTok(`{"nbf":true}`), "k", "malformed token"},
		{"issuer missing", map[string]any{"issuers": []any{"kong"}}, hsTok(claims("")), "k", "issuer not allowed"},
		{"issuer other", map[string]any{"issuers": []any{"kong"}}, hsTok(claims(`,"iss":"evil"`)), "k", "issuer not allowed"},
		{"issuer not a string", map[string]any{"issuers": []any{"kong"}}, hsTok(claims(`,"iss":["kong"]`)), "k", "issuer not allowed"},
		{"audience missing", map[string]any{"audiences": []any{"api"}}, hsTok(claims("")), "k", "audience not allowed"},
		{"audience other", map[string]any{"audiences": []any{"api"}}, hsTok(claims(`,"aud":["web",1]`)), "k", "audience not allowed"},
		{"required claim missing", map[string]any{"required_claims": []any{"sub", "scope"}}, hsTok(claims("")), "k",
			`missing required claim "scope"`},
		{"required claim null", map[string]any{"required_claims": []any{"scope"}}, hsTok(claims(`,"scope":null`)), "k",
			`missing required claim "scope"`},
		// Order: the shape before the algorithm before the key before the signature before the claims.
		{"expired and bad signature", nil, makeToken(`{"alg":"HS256"}`, `{"exp":1}`, hs256("x")), "k", "signature verification failed"},
		{"none and no key", nil, b64(`{"alg":"none"}`) + "." + b64("{}") + ".", nil, `algorithm "none" is not allowed`},
		{"expired and wrong issuer", map[string]any{"issuers": []any{"kong"}}, hsTok(`{"exp":1}`), "k", "token expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runVerify(t, tt.attrs, tt.token, tt.key)
			if errText(err) != tt.want {
				t.Errorf("Run(%.60v) = %v, %v, want %q", tt.token, out, err, tt.want)
			}
		})
	}
}

func TestJWTVerifyAccepts(t *testing.T) {
	hsTok := func(payload string) string { return makeToken(`{"alg":"HS256"}`, payload, hs256("k")) }
	tests := []struct {
		name  string
		attrs map[string]any
		token string
	}{
		{"exp now", nil, hsTok(`{"exp":1700000000}`)},
		{"exp within leeway", map[string]any{"leeway": 10}, hsTok(`{"exp":1699999990}`)},
		{"exp not validated", map[string]any{"validate_exp": false}, hsTok(`{"exp":1}`)},
		{"exp null", nil, hsTok(`{"exp":null}`)},
		{"nbf now", nil, hsTok(`{"nbf":1700000000}`)},
		{"nbf within leeway", map[string]any{"leeway": 5}, hsTok(`{"nbf":1700000005}`)},
		{"nbf not validated", map[string]any{"validate_nbf": false}, hsTok(`{"nbf":1800000000}`)},
		{"issuer", map[string]any{"issuers": []any{"a", "kong"}}, hsTok(`{"iss":"kong"}`)},
		{"audience string", map[string]any{"audiences": []any{"api"}}, hsTok(`{"aud":"api"}`)},
		{"audience array", map[string]any{"audiences": []any{"api"}}, hsTok(`{"aud":["web","api"]}`)},
		{"required claims", map[string]any{"required_claims": []any{"sub", "n"}}, hsTok(`{"sub":"a","n":false}`)},
		{"lower-case bearer", nil, "bearer " + hsTok("{}")},
		{"BEARER and spaces", nil, "  BEARER   " + hsTok("{}") + " 	"},
		{"allowed list", map[string]any{"allowed_algorithms": []any{"RS256", "HS256"}}, hsTok("{}")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := runVerify(t, tt.attrs, tt.token, "k"); err != nil {
				t.Errorf("Run(%s) = %v, want no error", tt.token, err)
			}
		})
	}
}

// jku, x5u and a URL kid are never fetched (hardening §2.9).
func TestJWTVerifyNeverFetches(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","k":"YXR0YWNrZXI"}]}`))
	}))
	defer srv.Close()
	keys := loadTestKeys()
	header := `{"alg":"RS256","jku":"` + srv.URL + `","x5u":"` + srv.URL + `/cert","kid":"` + srv.URL + `/kid"}`
	attacker := makeToken(header, `{"sub":"admin"}`, signWith(t, "RS256", keys.rsa2))
	if _, err := runVerify(t, nil, attacker, pkixPEM(t, keys.rsa.Public())); errText(err) != "signature verification failed" {
		t.Errorf("verify(attacker's jku token) = %v, want signature verification failed", err)
	}
	set := jwks(jwkObject(t, keys.rsa.Public(), "kid", "k1", "x5u", srv.URL))
	if _, err := runVerify(t, nil, attacker, set); errText(err) != "no matching key in JWKS" {
		t.Errorf("verify(URL kid, JWKS) = %v, want no matching key in JWKS", err)
	}
	hsAttack := makeToken(`{"alg":"HS256","jku":"`+srv.URL+`"}`, "{}", hs256("attacker"))
	if _, err := runVerify(t, nil, hsAttack, set); errText(err) != "no matching key in JWKS" {
		t.Errorf("verify(HS256 jku token, JWKS) = %v, want no matching key in JWKS", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the jku/x5u server got %d requests, want 0", n)
	}
}

// The key cache serves a repeated string key and notices a changed one.
func TestJWTVerifyKeyCache(t *testing.T) {
	n := mustBuild(t, jwtVerifyKind(jwtDeps), nil, jwtVerifyInputs, true)
	tok := makeToken(`{"alg":"HS256"}`, "{}", hs256("one"))
	for i, tc := range []struct {
		key, want string
	}{{"one", ""}, {"one", ""}, {"two", "signature verification failed"}, {"one", ""}} {
		if _, err := n.Run(context.Background(), testEnv(nil), []any{tok, tc.key}); errText(err) != tc.want {
			t.Errorf("Run #%d (key %q) = %v, want %q", i, tc.key, err, tc.want)
		}
	}
}

func TestJWTDecode(t *testing.T) {
	tok := makeToken(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"alice","n":1}`, hs256("k"))
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	want := []any{map[string]any{"alg": "HS256", "typ": "JWT"}, map[string]any{"n": 1, "sub": "alice"}, sig}
	n := mustBuild(t, jwtDecodeKind(), nil, selfInput, true)
	for _, in := range []string{tok, "bearer " + tok, "Bearer " + tok, " BeArEr\t" + tok + " "} {
		out, err := n.Run(context.Background(), testEnv(nil), []any{in})
		if err != nil || !reflect.DeepEqual(out, want) {
			t.Errorf("Run(%q) = %v, %v, want %v", in, out, err, want)
		}
	}
	unsigned := b64(`{"alg":"HS256"}`) + "." + b64(`{}`) + "."
	if out, err := n.Run(context.Background(), testEnv(nil), []any{unsigned}); err != nil || out[2] != "" {
		t.Errorf("Run(unsigned) = %v, %v, want an empty signature", out, err)
	}
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, "token is missing"},
		{"Bearer", "token is missing"},
		{"Basic dXNlcjpwYXNz", "malformed token"},
		{"a.b.c", "malformed token"},
		{b64(`{"alg":"none"}`) + "." + b64(`{}`) + ".", `algorithm "none" is not allowed`},
		{strings.Repeat("a", 8193), "malformed token"},
	} {
		if _, err := n.Run(context.Background(), testEnv(nil), []any{tc.in}); errText(err) != tc.want {
			t.Errorf("Run(%.40v) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func FuzzJWTDecode(f *testing.F) {
	f.Add(makeToken(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"a"}`, hs256("k")))
	f.Add("Bearer " + makeToken(`{"alg":"RS256","kid":"k1"}`, `{"exp":1e400}`, nil))
	f.Add(b64(`{"alg":"none"}`) + "." + b64("{}") + ".")
	f.Add("a.b.c")
	f.Add("")
	dec := jwtDecodeNode{}
	ver := &jwtVerifyNode{jwtVerifyConfig: jwtVerifyConfig{now: jwtDeps.Now, validateExp: true, validateNbf: true}, token: 0, key: 1}
	f.Fuzz(func(t *testing.T, token string) {
		out, err := dec.Run(context.Background(), testEnv(nil), []any{token})
		if err == nil {
			if _, ok := out[0].(map[string]any); !ok {
				t.Fatalf("Run(%q) header = %#v", token, out[0])
			}
			if _, ok := out[1].(map[string]any); !ok {
				t.Fatalf("Run(%q) payload = %#v", token, out[1])
			}
		}
		if _, err := ver.Run(context.Background(), testEnv(nil), []any{token, "k"}); err == nil {
			if !strings.Contains(token, ".") {
				t.Fatalf("verify(%q) accepted a token without segments", token)
			}
		}
	})
}

func BenchmarkJWTVerify(b *testing.B) {
	keys := loadTestKeys()
	for _, tc := range []struct {
		alg  string
		sign func([]byte) []byte
		key  string
	}{
		{"HS256", hs256("k"), "k"},
		{"RS256", signWith(b, "RS256", keys.rsa), pkixPEM(b, keys.rsa.Public())},
	} {
		b.Run(tc.alg, func(b *testing.B) {
			tok := makeToken(`{"alg":"`+tc.alg+`"}`, `{"sub":"alice","exp":1800000000}`, tc.sign)
			d, _ := decodeForTest(jwtVerifyKind(jwtDeps), map[string]any{})
			n, _ := d.Build(&engine.BuildInfo{InputFields: jwtVerifyInputs})
			in := []any{"Bearer " + tok, tc.key}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := n.Run(context.Background(), nil, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
