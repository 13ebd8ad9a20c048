package nodes

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/datakit-gateway/datakit/engine"
)

var jwtSignInputs = []engine.Field{
	{Name: "claims", Type: engine.TypeMap},
	{Name: "key", Type: engine.TypeAny},
}

var jwtSignOutputs = []engine.Field{
	{Name: "token", Type: engine.TypeString},
	{Name: "claims", Type: engine.TypeMap},
	{Name: "header", Type: engine.TypeMap},
}

// jwtSignKind is the `jwt_sign` node type (spec §7.10).
func jwtSignKind(deps Deps) engine.Kind {
	now := deps.withDefaults().Now
	return engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
		n := &jwtSignNode{now: now}
		if a.Required("algorithm") {
			n.alg = a.OneOf("algorithm", "", jwtAlgorithms...)
		}
		n.expiresIn = a.Int("expires_in", 300, 1, math.MaxInt64)
		n.notBefore = a.Int("not_before", 0, 0, math.MaxInt64)
		n.kid = a.String("kid", "", 1, 1024)
		n.typ = a.String("typ", "JWT", 1, 255)
		static := a.StringMap("static_claims")
		n.static = make(map[string]any, len(static))
		for k, v := range static {
			n.static[k] = v
		}
		d := &engine.Decl{
			IO:      engine.KeyInput | engine.KeyInputs | engine.KeyOutput | engine.KeyOutputs,
			Inputs:  slices.Clone(jwtSignInputs),
			Outputs: slices.Clone(jwtSignOutputs),
		}
		if n.alg == "" {
			return d
		}
		d.Build = func(b *engine.BuildInfo) (engine.Node, error) {
			nb := &jwtSignNode{now: n.now, alg: n.alg, expiresIn: n.expiresIn, notBefore: n.notBefore,
				kid: n.kid, typ: n.typ, static: n.static}
			nb.claims, nb.key = fieldIndex(b.InputFields, "claims", 0), fieldIndex(b.InputFields, "key", 1)
			return nb, nil
		}
		return d
	})
}

// jwtSignNode is a configured jwt_sign node. Apart from the key cache, which
// is swapped atomically, it is immutable; safe for concurrent use.
type jwtSignNode struct {
	now                  func() time.Time
	alg                  string
	expiresIn, notBefore int64
	kid, typ             string
	static               map[string]any // read-only
	claims, key          int            // input positions
	cache                atomic.Pointer[jwtSignKeyCacheEntry]
}

type jwtSignKeyCacheEntry struct {
	src string
	key jwtKey
}

var _ engine.Node = (*jwtSignNode)(nil)

func (n *jwtSignNode) Run(_ context.Context, _ *engine.Env, in []any) ([]any, error) {
	key, err := n.signingKey(inputAt(in, n.key))
	if err != nil {
		return nil, err
	}
	claims := make(map[string]any, len(n.static)+8)
	for k, v := range n.static {
		claims[k] = v
	}
	if c, ok := inputAt(in, n.claims).(map[string]any); ok {
		for k, v := range c {
			claims[k] = v
		}
	}
	now := n.now().Unix()
	claims["iat"] = int(now)
	claims["nbf"] = int(addSeconds(now, n.notBefore))
	claims["exp"] = int(addSeconds(now, n.expiresIn))
	header := map[string]any{"alg": n.alg, "typ": n.typ}
	if kid := n.kid; kid != "" {
		header["kid"] = kid
	} else if key.kid != "" {
		header["kid"] = key.kid // the JWK's own kid lets a JWKS pick it
	}
	h, err := engine.EncodeJSON(header)
	if err != nil {
		return nil, err
	}
	p, err := engine.EncodeJSON(claims)
	if err != nil {
		return nil, fmt.Errorf("invalid claims: %w", err)
	}
	enc := base64.RawURLEncoding
	var b strings.Builder
	b.Grow(enc.EncodedLen(len(h)) + enc.EncodedLen(len(p)) + 2 + 700)
	b.WriteString(enc.EncodeToString(h))
	b.WriteByte('.')
	b.WriteString(enc.EncodeToString(p))
	sig, err := jwsbb.Sign(key.key, n.alg, []byte(b.String()), nil)
	if err != nil {
		// Keys were checked against the algorithm: this is a crypto failure.
		return nil, fmt.Errorf("cannot sign token with %s", n.alg)
	}
	b.WriteByte('.')
	b.WriteString(enc.EncodeToString(sig))
	return []any{b.String(), claims, header}, nil
}

// signingKey parses the key input for the node's algorithm, reusing the last
// parse of the same string.
func (n *jwtSignNode) signingKey(v any) (jwtKey, error) {
	s, isString := v.(string)
	if isString {
		if c := n.cache.Load(); c != nil && c.src == s {
			return c.key, nil
		}
	}
	k, err := parseSigningKey(n.alg, v)
	if err != nil {
		return jwtKey{}, err
	}
	if isString {
		n.cache.Store(&jwtSignKeyCacheEntry{src: s, key: k})
	}
	return k, nil
}

// parseSigningKey reads a signing key (spec §7.10): for HS* an `oct` JWK or
// else the string's bytes; for the others a PEM private key (PKCS#1, PKCS#8,
// SEC1) or a private JWK. A key of another family, or a public key, does not
// match the algorithm.
func parseSigningKey(alg string, v any) (jwtKey, error) {
	obj, text, err := keyInput(v)
	if err != nil {
		return jwtKey{}, err
	}
	var k jwtKey
	switch {
	case obj != nil:
		if _, isSet := obj["keys"]; isSet {
			return jwtKey{}, errKeyMismatch(alg) // a JWKS names no single key to sign with
		}
		if k, err = parseJWK(obj); err != nil {
			return jwtKey{}, err
		}
	case isPEM(text):
		key, err := parsePEMKey(text, true)
		if err != nil {
			return jwtKey{}, err
		}
		k.key = key
	case strings.HasPrefix(alg, "HS"):
		k.key = []byte(text)
	default:
		return jwtKey{}, errKeyMismatch(alg)
	}
	if !k.fits(alg, true) {
		return jwtKey{}, errKeyMismatch(alg)
	}
	return k, nil
}

// addSeconds is t + d for d >= 0, saturating instead of overflowing.
func addSeconds(t, d int64) int64 {
	if t > math.MaxInt64-d {
		return math.MaxInt64
	}
	return t + d
}
