package datakit_test

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/gateway/plugins/keyauth"
)

// TestRejectWithoutCredentials is spec §13.12 through the gateway.
func TestRejectWithoutCredentials(t *testing.T) {
	upstream, upRec := mock(t, 200, `{}`, 0)
	gw := startGateway(t, serviceWith(upstream.URL, `
          nodes:
            - name: CHECK_AUTH
              type: jq
              inputs: {headers: request.headers}
              jq: '.headers.Authorization? != null or .headers.authorization? != null'
            - {name: AUTH_BRANCH, type: branch, input: CHECK_AUTH, else: [UNAUTH_RESPONSE, UNAUTH_EXIT]}
            - name: UNAUTH_RESPONSE
              type: static
              values:
                content-type: application/json
                www-authenticate: 'Bearer error="invalid_token"'
                BODY: '{"message": "Unauthorized"}'
            - {name: UNAUTH_EXIT, type: exit, status: 401, inputs: {body: UNAUTH_RESPONSE.BODY, headers: UNAUTH_RESPONSE}}
`))
	resp, body := get(t, gw.URL+"/", nil)
	if resp.StatusCode != 401 || body != `{"message": "Unauthorized"}` || resp.Header.Get("Www-Authenticate") != `Bearer error="invalid_token"` ||
		resp.Header.Get("Content-Type") != "application/json" || upRec.count() != 0 {
		t.Errorf("without Authorization: %d %q %v, upstream saw %d", resp.StatusCode, body, resp.Header, upRec.count())
	}
	if resp, _ := get(t, gw.URL+"/", http.Header{"Authorization": {"Bearer x"}}); resp.StatusCode != 200 || upRec.count() != 1 {
		t.Errorf("with Authorization: %d, upstream saw %d", resp.StatusCode, upRec.count())
	}
}

// TestCacheOrFetch is spec §13.7 through the gateway: the second request is
// a hit and the data service is called once.
func TestCacheOrFetch(t *testing.T) {
	data, dataRec := mock(t, 200, `{"v":1}`, 0)
	upstream, _ := mock(t, 200, `{}`, 0)
	gw := startGateway(t, serviceWith(upstream.URL, `
          resources: {cache: {strategy: memory}}
          nodes:
            - {name: CACHE_KEY_GET, type: static, values: {key: cache key}}
            - {name: GET, type: cache, input: CACHE_KEY_GET, ttl: 200}
            - {name: branch, type: branch, input: GET.miss, then: [DATA, SET, EXIT_MISS], else: [EXIT_HIT]}
            - {name: DATA, type: call, url: `+data.URL+`/anything}
            - name: VALUES
              type: static
              values: {hit: {x-hit: true}, ttl: 100, miss: {x-miss: true}, key: cache key}
            - {name: SET, type: cache, inputs: {key: VALUES.key, data: DATA, ttl: VALUES.ttl}}
            - {name: EXIT_MISS, type: exit, status: 200, inputs: {headers: VALUES.miss, body: DATA}}
            - {name: EXIT_HIT, type: exit, status: 200, inputs: {headers: VALUES.hit, body: GET.data}}
`))
	r1, b1 := get(t, gw.URL+"/", nil)
	r2, b2 := get(t, gw.URL+"/", nil)
	if r1.Header.Get("X-Miss") != "true" || r2.Header.Get("X-Hit") != "true" || b1 != b2 || !strings.Contains(b1, `"body":{"v":1}`) {
		t.Errorf("first %v %s, second %v %s", r1.Header, b1, r2.Header, b2)
	}
	if dataRec.count() != 1 {
		t.Errorf("data service called %d times, want 1", dataRec.count())
	}
}

const xmlDoc = `<root><address><city>Wonderland</city><street>123 Main St</street></address><age>30</age><courses>Math</courses><courses>Science</courses><is_student>false</is_student><name>Alice</name><null_value>null</null_value></root>`

func post(t *testing.T, url, contentType, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestJSONAndXML is spec §13.8 and §13.9 through the gateway.
func TestJSONAndXML(t *testing.T) {
	upstream, _ := mock(t, 200, `{}`, 0)
	toXML := startGateway(t, serviceWith(upstream.URL, `
          debug: true
          nodes:
            - {name: JSON_XML, type: json_to_xml, attributes_name_prefix: "-", attributes_block_name: null, text_block_name: "#text", input: request.body}
            - {name: EXIT, type: exit, inputs: {body: JSON_XML}}
`))
	in := `{"root":{"name":"Alice","age":30,"is_student":false,"courses":["Math","Science"],"address":{"street":"123 Main St","city":"Wonderland"},"null_value":null}}`
	resp, body := post(t, toXML.URL+"/", "application/json", in)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/xml" || body != xmlDoc {
		t.Errorf("JSON→XML: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	toJSON := startGateway(t, serviceWith(upstream.URL, `
          nodes:
            - {name: XML_JSON, type: xml_to_json, attributes_block_name: null, attributes_name_prefix: "-", recognize_type: true, text_block_name: "#text", xpath: null, input: request.body}
            - {name: EXIT, type: exit, inputs: {body: XML_JSON}}
`))
	indented := strings.ReplaceAll(xmlDoc, "><", ">\n  <")
	for _, ct := range []string{"application/xml", "text/xml"} {
		resp, body := post(t, toJSON.URL+"/", ct, indented)
		var got, want any
		_ = json.Unmarshal([]byte(body), &got)
		_ = json.Unmarshal([]byte(in), &want)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || mustJSON(got) != mustJSON(want) {
			t.Errorf("XML→JSON (%s): %d %s", ct, resp.StatusCode, body)
		}
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// TestSignJWTForConsumer is spec §13.11: key-auth authenticates, the graph
// signs a JWT with the consumer id using a vault HMAC key.
func TestSignJWTForConsumer(t *testing.T) {
	t.Setenv("JWT_HMAC_KEY", "k3y")
	upstream, upRec := mock(t, 200, `{}`, 0)
	gw := startGateway(t, `_format_version: "3.0"
consumers: [{username: alice, keyauth_credentials: [{key: alice-key}]}]
services:
  - name: api
    url: `+upstream.URL+`
    routes:
      - name: r
        paths: ["/"]
        plugins:
          - name: key-auth
          - name: datakit
            config:
              resources: {vault: {jwt_hmac_key: "{vault://env/jwt-hmac-key}"}}
              nodes:
                - {name: GET_CONSUMER, type: property, property: kong.client.consumer}
                - {name: BUILD_CLAIMS, type: jq, input: GET_CONSUMER, jq: '{"sub": .id}'}
                - name: SIGN_JWT
                  type: jwt_sign
                  algorithm: HS256
                  expires_in: 300
                  static_claims: {iss: kong}
                  inputs: {claims: BUILD_CLAIMS, key: vault.jwt_hmac_key}
                - {name: BUILD_HEADER, type: jq, input: SIGN_JWT.token, output: service_request.headers, jq: '{"X-Consumer-JWT": .}'}
`, keyauth.New("test"))
	if resp, body := get(t, gw.URL+"/", http.Header{"Apikey": {"alice-key"}}); resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	token := upRec.reqs[0].Header.Get("X-Consumer-Jwt")
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("X-Consumer-Jwt = %q", token)
	}
	mac := hmac.New(sha256.New, []byte("k3y"))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if b64(mac.Sum(nil)) != parts[2] {
		t.Errorf("signature does not verify with k3y")
	}
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	consumerID := upRec.reqs[0].Header.Get("X-Consumer-Id")
	if string(header) != `{"alg":"HS256","typ":"JWT"}` || claims["sub"] != consumerID || claims["iss"] != "kong" ||
		claims["exp"].(float64)-claims["iat"].(float64) != 300 || claims["nbf"] != claims["iat"] {
		t.Errorf("header %s, claims %v, consumer %s", header, claims, consumerID)
	}
}

// rsaToken signs claims with RS256 and kid.
func rsaToken(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"})
	p, _ := json.Marshal(claims)
	signing := b64(h) + "." + b64(p)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

func jwks(key *rsa.PrivateKey, kid string) string {
	b, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": kid, "alg": "RS256",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}}})
	return string(b)
}

// TestConsumerFromOneOfTwoJWTs is spec §13.14 through the gateway.
func TestConsumerFromOneOfTwoJWTs(t *testing.T) {
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	t.Setenv("JWKS_1", jwks(k1, "k1"))
	t.Setenv("JWKS_2", jwks(k2, "k2"))
	upstream, upRec := mock(t, 200, `{}`, 0)
	gw := startGateway(t, `_format_version: "3.0"
consumers: [{username: alice}]
services:
  - name: api
    url: `+upstream.URL+`
    routes: [{name: r, paths: ["/"]}]
    plugins:
      - name: datakit
        config:
          debug: true
          resources:
            vault:
              jwks1: "{vault://env/jwks-1}"
              jwks2: "{vault://env/jwks-2}"
          nodes:
            - {name: HAS_AUTH1, type: jq, input: request.headers, jq: '.Authorization != null'}
            - {name: BRANCH_AUTH1, type: branch, input: HAS_AUTH1, then: [VERIFY_AUTH1], else: [HAS_AUTH2]}
            - {name: VERIFY_AUTH1, type: jwt_verify, inputs: {token: request.headers.authorization, key: vault.jwks1}}
            - {name: BUILD_CONSUMER1, type: jq, input: VERIFY_AUTH1.claims, jq: '{username: .sub}'}
            - {name: SET_CONSUMER1, type: property, property: kong.client.consumer, input: BUILD_CONSUMER1}
            - {name: HAS_AUTH2, type: jq, input: request.headers, jq: '.Authorization2 != null'}
            - {name: BRANCH_AUTH2, type: branch, input: HAS_AUTH2, then: [VERIFY_AUTH2]}
            - {name: VERIFY_AUTH2, type: jwt_verify, inputs: {token: request.headers.authorization2, key: vault.jwks2}}
            - {name: BUILD_CONSUMER2, type: jq, input: VERIFY_AUTH2.claims, jq: '{username: .sub}'}
            - {name: SET_CONSUMER2, type: property, property: kong.client.consumer, input: BUILD_CONSUMER2}
`)
	alice1 := rsaToken(t, k1, "k1", map[string]any{"sub": "alice"})
	alice2 := rsaToken(t, k2, "k2", map[string]any{"sub": "alice"})
	cases := []struct {
		name   string
		header http.Header
		status int
		want   string
	}{
		{"first header", http.Header{"Authorization": {"Bearer " + alice1}}, 200, ""},
		{"second header", http.Header{"Authorization2": {"Bearer " + alice2}}, 200, ""},
		{"k2 token in the first header", http.Header{"Authorization": {"Bearer " + alice2}}, 500, `"error":"no matching key in JWKS"`},
		{"unknown subject", http.Header{"Authorization": {"Bearer " + rsaToken(t, k1, "k1", map[string]any{"sub": "bob"})}}, 500, `"error":"consumer not found"`},
		{"no header", nil, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := upRec.count()
			resp, body := get(t, gw.URL+"/", tc.header)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %s, want %d containing %s", resp.StatusCode, body, tc.status, tc.want)
			}
			if proxied := upRec.count() > before; proxied != (tc.status == 200) {
				t.Errorf("proxied = %v", proxied)
			}
		})
	}
}
