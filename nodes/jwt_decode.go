package nodes

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/datakit-gateway/datakit/engine"
)

// jwtMaxTokenBytes bounds a token input (spec §5.5).
const jwtMaxTokenBytes = 8 << 10

// jwtAlgorithms are the signature algorithms of the JWT nodes (spec §2.4).
var jwtAlgorithms = []string{
	"ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512",
	"PS256", "PS384", "PS512", "RS256", "RS384", "RS512",
}

// The JWT errors of spec §7.10 that carry no parameter.
var (
	errTokenMissing     = errors.New("token is missing")
	errMalformedToken   = errors.New("malformed token")
	errKeyRequired      = errors.New("key is required")
	errNoJWKSKey        = errors.New("no matching key in JWKS")
	errSignature        = errors.New("signature verification failed")
	errTokenExpired     = errors.New("token expired")
	errTokenNotYetValid = errors.New("token not yet valid")
	errIssuer           = errors.New("issuer not allowed")
	errAudience         = errors.New("audience not allowed")
)

// errAlgNotAllowed is the error for a token algorithm outside the allowed
// (or supported) ones, `none` included.
func errAlgNotAllowed(alg string) error { return fmt.Errorf("algorithm %q is not allowed", alg) }

// errKeyMismatch is the error for a key of another family than alg's.
func errKeyMismatch(alg string) error { return fmt.Errorf("key does not match algorithm %s", alg) }

var jwtDecodeOutputs = []engine.Field{
	{Name: "header", Type: engine.TypeMap},
	{Name: "payload", Type: engine.TypeMap},
	{Name: "signature", Type: engine.TypeString},
}

// jwtDecodeKind is the `jwt_decode` node type (spec §7.10): it splits a
// token without verifying it.
func jwtDecodeKind() engine.Kind {
	return engine.KindFunc(func(*engine.Attrs) *engine.Decl {
		return &engine.Decl{
			IO:      engine.KeyInput | engine.KeyOutput | engine.KeyOutputs,
			Input:   engine.TypeString,
			Outputs: append([]engine.Field(nil), jwtDecodeOutputs...),
			Build:   func(*engine.BuildInfo) (engine.Node, error) { return jwtDecodeNode{}, nil },
		}
	})
}

// jwtDecodeNode has no state; safe for concurrent use.
type jwtDecodeNode struct{}

var _ engine.Node = jwtDecodeNode{}

func (jwtDecodeNode) Run(_ context.Context, _ *engine.Env, in []any) ([]any, error) {
	var v any
	if len(in) > 0 {
		v = in[0]
	}
	tok, err := parseJWT(v)
	if err != nil {
		return nil, err
	}
	if isAlgNone(tok.alg) {
		return nil, errAlgNotAllowed(tok.alg)
	}
	return []any{tok.header, tok.payload, tok.rawSignature}, nil
}

// jwtToken is a token split into its parts; header and payload are the
// decoded JSON objects.
type jwtToken struct {
	header, payload map[string]any
	alg             string // the header's alg, "" if absent or not a string
	kid             string
	signingInput    string // "<header>.<payload>" as written
	rawSignature    string // third segment as written
	signature       []byte
}

// parseJWT takes a token input: a string with or without a
// case-insensitive `Bearer ` prefix, at most jwtMaxTokenBytes long, of three
// base64url segments, the first two JSON objects.
func parseJWT(v any) (*jwtToken, error) {
	if v == nil {
		return nil, errTokenMissing
	}
	s, ok := v.(string)
	if !ok {
		return nil, errMalformedToken
	}
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "bearer") {
		return nil, errTokenMissing // a scheme without credentials
	}
	if len(s) > 7 && strings.EqualFold(s[:6], "bearer") && (s[6] == ' ' || s[6] == '\t') {
		s = strings.TrimSpace(s[7:])
	}
	if s == "" {
		return nil, errTokenMissing
	}
	if len(s) > jwtMaxTokenBytes {
		return nil, errMalformedToken
	}
	h, rest, ok := strings.Cut(s, ".")
	if !ok {
		return nil, errMalformedToken
	}
	p, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return nil, errMalformedToken
	}
	t := &jwtToken{signingInput: s[:len(h)+1+len(p)], rawSignature: sig}
	var err error
	if t.header, err = decodeSegment(h); err != nil {
		return nil, err
	}
	if t.payload, err = decodeSegment(p); err != nil {
		return nil, err
	}
	if t.signature, err = base64.RawURLEncoding.Strict().DecodeString(sig); err != nil {
		return nil, errMalformedToken
	}
	t.alg, _ = t.header["alg"].(string)
	t.kid, _ = t.header["kid"].(string)
	return t, nil
}

// decodeSegment decodes a base64url (unpadded) JSON object.
func decodeSegment(seg string) (map[string]any, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return nil, errMalformedToken
	}
	v, err := engine.DecodeJSON(b)
	if err != nil {
		return nil, errMalformedToken
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errMalformedToken
	}
	return m, nil
}

// isAlgNone reports the unsecured algorithm, however it is spelt.
func isAlgNone(alg string) bool { return strings.EqualFold(alg, "none") }
