package nodes

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/datakit-gateway/datakit/engine"
)

var jwtVerifyInputs = []engine.Field{
	{Name: "token", Type: engine.TypeString},
	{Name: "key", Type: engine.TypeAny},
}

var jwtVerifyOutputs = []engine.Field{
	{Name: "claims", Type: engine.TypeMap},
	{Name: "header", Type: engine.TypeMap},
}

// jwtVerifyKind is the `jwt_verify` node type (spec §7.10). The token never
// picks the kind of key: its alg must belong to the family of the key the
// graph gives (hardening §2.9), and nothing it names (jku, x5u, a URL kid)
// is ever fetched.
func jwtVerifyKind(deps Deps) engine.Kind {
	now := deps.withDefaults().Now
	return engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
		n := &jwtVerifyConfig{now: now}
		n.allowed = a.StringList("allowed_algorithms", 0, math.MaxInt32, 255)
		if raw, ok := a.Raw("allowed_algorithms"); ok && n.allowed != nil {
			arr, _ := raw.([]any)
			for i, e := range arr {
				if alg, isStr := e.(string); isStr && alg != "" && !slices.Contains(jwtAlgorithms, alg) {
					a.Errorf(fmt.Sprintf("allowed_algorithms[%d]", i), "must be one of: %s; got %q",
						strings.Join(jwtAlgorithms, ", "), alg)
				}
			}
		}
		n.issuers = a.StringList("issuers", 0, math.MaxInt32, math.MaxInt32)
		n.audiences = a.StringList("audiences", 0, math.MaxInt32, math.MaxInt32)
		n.required = a.StringList("required_claims", 0, math.MaxInt32, math.MaxInt32)
		n.leeway = a.Int("leeway", 0, 0, math.MaxInt64)
		n.validateExp = a.Bool("validate_exp", true)
		n.validateNbf = a.Bool("validate_nbf", true)
		return &engine.Decl{
			IO:      engine.KeyInput | engine.KeyInputs | engine.KeyOutput | engine.KeyOutputs,
			Inputs:  slices.Clone(jwtVerifyInputs),
			Outputs: slices.Clone(jwtVerifyOutputs),
			Build: func(b *engine.BuildInfo) (engine.Node, error) {
				return &jwtVerifyNode{jwtVerifyConfig: *n,
					token: fieldIndex(b.InputFields, "token", 0), key: fieldIndex(b.InputFields, "key", 1)}, nil
			},
		}
	})
}

// fieldIndex is the position of the named input in Run's slice, def when
// the fields are not listed.
func fieldIndex(fields []engine.Field, name string, def int) int {
	if len(fields) == 0 {
		return def
	}
	for i, f := range fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// inputAt reads in[i], nil when absent.
func inputAt(in []any, i int) any {
	if i < 0 || i >= len(in) {
		return nil
	}
	return in[i]
}

// jwtVerifyConfig is a jwt_verify node's decoded attributes.
type jwtVerifyConfig struct {
	now                func() time.Time
	allowed            []string // empty: every algorithm of jwtAlgorithms
	issuers, audiences []string
	required           []string
	leeway             int64
	validateExp        bool
	validateNbf        bool
}

// jwtVerifyNode is a configured jwt_verify node. Apart from the key cache,
// which is swapped atomically, it is immutable; safe for concurrent use.
type jwtVerifyNode struct {
	jwtVerifyConfig
	token, key int // input positions
	cache      atomic.Pointer[jwtKeyCacheEntry]
}

var _ engine.Node = (*jwtVerifyNode)(nil)

func (n *jwtVerifyNode) Run(_ context.Context, _ *engine.Env, in []any) ([]any, error) {
	claims, header, err := n.verify(inputAt(in, n.token), inputAt(in, n.key))
	if err != nil {
		return nil, err
	}
	return []any{claims, header}, nil
}

// verify applies the checks of spec §7.10 in their order.
func (n *jwtVerifyNode) verify(tokenIn, keyIn any) (claims, header map[string]any, err error) {
	tok, err := parseJWT(tokenIn)
	if err != nil {
		return nil, nil, err
	}
	if tok.alg == "" {
		return nil, nil, errMalformedToken
	}
	if isAlgNone(tok.alg) || !slices.Contains(jwtAlgorithms, tok.alg) ||
		len(n.allowed) > 0 && !slices.Contains(n.allowed, tok.alg) {
		return nil, nil, errAlgNotAllowed(tok.alg)
	}
	keys, err := n.keys(keyIn)
	if err != nil {
		return nil, nil, err
	}
	candidates, err := keys.candidates(tok)
	if err != nil {
		return nil, nil, err
	}
	verified := false
	for _, k := range candidates {
		if jwsbb.Verify(k.key, tok.alg, []byte(tok.signingInput), tok.signature) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, nil, errSignature
	}
	if err := n.checkClaims(tok.payload); err != nil {
		return nil, nil, err
	}
	return tok.payload, tok.header, nil
}

// checkClaims checks exp, nbf, iss, aud and the required claims.
func (n *jwtVerifyNode) checkClaims(p map[string]any) error {
	now := float64(n.now().Unix())
	leeway := float64(n.leeway)
	if n.validateExp && p["exp"] != nil {
		exp, ok := numericDate(p["exp"])
		if !ok {
			return errMalformedToken
		}
		if now > exp+leeway {
			return errTokenExpired
		}
	}
	if n.validateNbf && p["nbf"] != nil {
		nbf, ok := numericDate(p["nbf"])
		if !ok {
			return errMalformedToken
		}
		if now+leeway < nbf {
			return errTokenNotYetValid
		}
	}
	if len(n.issuers) > 0 {
		iss, ok := p["iss"].(string)
		if !ok || !slices.Contains(n.issuers, iss) {
			return errIssuer
		}
	}
	if len(n.audiences) > 0 && !audienceAllowed(p["aud"], n.audiences) {
		return errAudience
	}
	for _, name := range n.required {
		if p[name] == nil {
			return fmt.Errorf("missing required claim %q", name)
		}
	}
	return nil
}

// numericDate reads a JWT NumericDate (seconds, possibly fractional).
func numericDate(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// audienceAllowed reports whether aud (a string or an array of strings)
// names one of the allowed audiences.
func audienceAllowed(aud any, allowed []string) bool {
	switch x := aud.(type) {
	case string:
		return slices.Contains(allowed, x)
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && slices.Contains(allowed, s) {
				return true
			}
		}
	}
	return false
}

// keys parses the key input, reusing the last parse when the input is the
// same string (a vault value or a static key, the usual case).
func (n *jwtVerifyNode) keys(v any) (*jwtKeySet, error) {
	s, isString := v.(string)
	if isString {
		if c := n.cache.Load(); c != nil && c.src == s {
			return c.keys, nil
		}
	}
	keys, err := parseVerifyKeys(v)
	if err != nil {
		return nil, err
	}
	if isString {
		n.cache.Store(&jwtKeyCacheEntry{src: s, keys: keys})
	}
	return keys, nil
}

// jwtKeyCacheEntry is a parsed key input; never modified once stored.
type jwtKeyCacheEntry struct {
	src  string
	keys *jwtKeySet
}

// jwtKey is one usable key: []byte (HMAC secret), *rsa.PublicKey,
// *ecdsa.PublicKey or ed25519.PublicKey for verification; the private
// counterparts for signing.
type jwtKey struct {
	key any
	kid string // JWK kid
	alg string // JWK alg: the key is only for that algorithm
	use string // JWK use: "enc" keys are not for signatures
}

// jwtKeySet is a verification key input: a single key or a JWKS.
type jwtKeySet struct {
	keys []jwtKey
	jwks bool
}

// candidates returns the keys to try for tok (spec §7.10): a single key must
// fit the algorithm; in a JWKS the token's kid picks the keys, else every
// key that fits is tried.
func (s *jwtKeySet) candidates(tok *jwtToken) ([]jwtKey, error) {
	if !s.jwks {
		if !s.keys[0].fits(tok.alg, false) {
			return nil, errKeyMismatch(tok.alg)
		}
		return s.keys, nil
	}
	var out []jwtKey
	if tok.kid != "" {
		named := 0
		for _, k := range s.keys {
			if k.kid != tok.kid {
				continue
			}
			named++
			if k.fits(tok.alg, false) {
				out = append(out, k)
			}
		}
		if named == 0 {
			return nil, errNoJWKSKey
		}
		if len(out) == 0 {
			return nil, errKeyMismatch(tok.alg)
		}
		return out, nil
	}
	for _, k := range s.keys {
		if k.fits(tok.alg, false) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, errNoJWKSKey
	}
	return out, nil
}

// fits reports whether k belongs to alg's family (hardening §2.9): HS* a
// secret, RS*/PS* RSA, ES* EC on the algorithm's curve, EdDSA Ed25519;
// private keys when signing.
func (k jwtKey) fits(alg string, private bool) bool {
	if k.alg != "" && k.alg != alg || k.use == "enc" {
		return false
	}
	switch alg {
	case "HS256", "HS384", "HS512":
		secret, ok := k.key.([]byte)
		return ok && len(secret) > 0
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		if private {
			_, ok := k.key.(*rsa.PrivateKey)
			return ok
		}
		_, ok := k.key.(*rsa.PublicKey)
		return ok
	case "ES256", "ES384", "ES512":
		var curve elliptic.Curve
		if private {
			pk, ok := k.key.(*ecdsa.PrivateKey)
			if !ok {
				return false
			}
			curve = pk.Curve
		} else {
			pk, ok := k.key.(*ecdsa.PublicKey)
			if !ok {
				return false
			}
			curve = pk.Curve
		}
		return curve == esCurve(alg)
	case "EdDSA":
		if private {
			pk, ok := k.key.(ed25519.PrivateKey)
			return ok && len(pk) == ed25519.PrivateKeySize
		}
		pk, ok := k.key.(ed25519.PublicKey)
		return ok && len(pk) == ed25519.PublicKeySize
	}
	return false
}

func esCurve(alg string) elliptic.Curve {
	switch alg {
	case "ES256":
		return elliptic.P256()
	case "ES384":
		return elliptic.P384()
	}
	return elliptic.P521()
}

// errInvalidKey describes a key input that is no key at all. The detail
// never quotes key material.
func errInvalidKey(detail string) error { return fmt.Errorf("invalid key: %s", detail) }

// parseVerifyKeys reads a verification key input: a JWKS, a JWK, a PEM
// public key, certificate (or private key, whose public half is used), as
// JSON text or a decoded object; any other string is an HMAC secret.
func parseVerifyKeys(v any) (*jwtKeySet, error) {
	obj, text, err := keyInput(v)
	if err != nil {
		return nil, err
	}
	switch {
	case obj != nil:
		if _, isSet := obj["keys"]; isSet {
			return parseJWKS(obj)
		}
		k, err := parseJWK(obj)
		if err != nil {
			return nil, err
		}
		k.key = publicHalf(k.key)
		return &jwtKeySet{keys: []jwtKey{k}}, nil
	case isPEM(text):
		key, err := parsePEMKey(text, false)
		if err != nil {
			return nil, err
		}
		return &jwtKeySet{keys: []jwtKey{{key: key}}}, nil
	}
	return &jwtKeySet{keys: []jwtKey{{key: []byte(text)}}}, nil
}

// keyInput classifies a key input: a JSON object (given decoded, or as
// text holding a JWK or JWKS) or else a string.
func keyInput(v any) (obj map[string]any, text string, err error) {
	switch x := v.(type) {
	case nil:
		return nil, "", errKeyRequired
	case map[string]any:
		return x, "", nil
	case string:
		t := strings.TrimSpace(x)
		if t == "" {
			return nil, "", errKeyRequired
		}
		if strings.HasPrefix(t, "{") {
			if d, err := engine.DecodeJSON([]byte(t)); err == nil {
				if m, ok := d.(map[string]any); ok && (m["keys"] != nil || m["kty"] != nil) {
					return m, "", nil
				}
			}
		}
		return nil, x, nil
	}
	return nil, "", errInvalidKey("expected a string or an object, got " + engine.JSONType(v))
}

func isPEM(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN ") }

// parseJWKS reads the usable keys of a JWKS; keys of other types (or
// unreadable ones) are left out, as a JWKS may hold encryption keys too.
func parseJWKS(obj map[string]any) (*jwtKeySet, error) {
	arr, ok := obj["keys"].([]any)
	if !ok {
		return nil, errInvalidKey("JWKS keys must be an array")
	}
	set := &jwtKeySet{jwks: true}
	for _, e := range arr {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		k, err := parseJWK(m)
		if err != nil {
			continue
		}
		k.key = publicHalf(k.key)
		set.keys = append(set.keys, k)
	}
	return set, nil
}

// parseJWK reads one JWK with jwx and exports its raw key.
func parseJWK(obj map[string]any) (jwtKey, error) {
	b, err := engine.EncodeJSON(obj)
	if err != nil {
		return jwtKey{}, errInvalidKey("invalid JWK")
	}
	key, err := jwk.ParseKey(b)
	if err != nil {
		return jwtKey{}, errInvalidKey("invalid JWK")
	}
	var raw any
	if err := jwk.Export(key, &raw); err != nil {
		return jwtKey{}, errInvalidKey("invalid JWK")
	}
	k := jwtKey{key: raw}
	k.kid, _ = key.KeyID()
	k.use, _ = key.KeyUsage()
	if alg, ok := key.Algorithm(); ok {
		k.alg = alg.String()
	}
	return k, nil
}

// parsePEMKey reads the first PEM block: with private, a private key
// (PKCS#1, PKCS#8, SEC1); else a public key (PKIX, PKCS#1), a certificate
// or a private key reduced to its public half.
func parsePEMKey(s string, private bool) (any, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, errInvalidKey("invalid PEM")
	}
	if _, encrypted := block.Headers["Proc-Type"]; encrypted {
		return nil, errInvalidKey("encrypted PEM keys are not supported")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, errInvalidKey(fmt.Sprintf("unsupported PEM block %q", block.Type))
	}
	if err != nil {
		return nil, errInvalidKey("invalid PEM " + strings.ToLower(block.Type))
	}
	if ed, ok := key.(*ed25519.PrivateKey); ok {
		key = *ed
	}
	if !private {
		key = publicHalf(key)
	}
	return key, nil
}

// publicHalf returns the public key of a private key; other values as they
// are.
func publicHalf(k any) any {
	switch x := k.(type) {
	case *rsa.PrivateKey:
		return &x.PublicKey
	case *ecdsa.PrivateKey:
		return &x.PublicKey
	case ed25519.PrivateKey:
		return x.Public()
	case crypto.Signer:
		return x.Public()
	}
	return k
}
