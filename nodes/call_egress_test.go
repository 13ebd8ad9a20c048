package nodes

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/egress"
)

// policyDeps wires a destination policy into call nodes the way the gateway
// does (hardening §2.7).
func policyDeps(t testing.TB, allow ...string) Deps {
	t.Helper()
	p, err := egress.New(allow, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Deps{Version: "test", CallDestination: p.CheckURL, CallDialControl: p.ControlHost}
}

// dialOnlyDeps checks nothing before connecting, only at dial time, so the
// tests see the dial check alone (as for a name that rebinds).
func dialOnlyDeps(t testing.TB) Deps {
	d := policyDeps(t)
	d.CallDestination = nil
	return d
}

func wantRefused(t *testing.T, err error, rec *recorder) {
	t.Helper()
	if err == nil || err.Error() != "destination not allowed" {
		t.Fatalf("Run error = %v, want destination not allowed", err)
	}
	if n := len(rec.requests()); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

// withLocalhost spells the test server's URL with the name localhost.
func withLocalhost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = "localhost:" + u.Port()
	return u.String()
}

func TestCallDestinationPolicy(t *testing.T) {
	t.Run("static loopback URL is allowed", func(t *testing.T) {
		rec := newRecorder(t, nil)
		n := newCall(t, policyDeps(t), map[string]any{"url": rec.srv.URL + "/static"})
		if _, err := n.Run(context.Background(), nil, callIn(nil)); err != nil {
			t.Fatalf("Run = %v", err)
		}
		rec.only(t)
	})
	t.Run("dynamic loopback URL is refused", func(t *testing.T) {
		rec := newRecorder(t, nil)
		n := newCall(t, policyDeps(t), map[string]any{})
		for _, raw := range []string{rec.srv.URL, withLocalhost(t, rec.srv.URL),
			strings.Replace(rec.srv.URL, "127.0.0.1", "0x7f000001", 1),
			strings.Replace(rec.srv.URL, "127.0.0.1", "127.1", 1),
			strings.Replace(rec.srv.URL, "127.0.0.1", "[::ffff:127.0.0.1]", 1)} {
			_, err := n.Run(context.Background(), nil, callIn(map[string]any{"url": raw}))
			wantRefused(t, err, rec)
		}
	})
	t.Run("dynamic loopback URL allowed by allow", func(t *testing.T) {
		rec := newRecorder(t, nil)
		n := newCall(t, policyDeps(t, "127.0.0.1"), map[string]any{})
		if _, err := n.Run(context.Background(), nil, callIn(map[string]any{"url": rec.srv.URL})); err != nil {
			t.Fatalf("Run = %v", err)
		}
		rec.only(t)
	})
	t.Run("non-empty allow refuses other dynamic destinations", func(t *testing.T) {
		rec := newRecorder(t, nil)
		n := newCall(t, policyDeps(t, "10.0.0.0/8"), map[string]any{})
		_, err := n.Run(context.Background(), nil, callIn(map[string]any{"url": rec.srv.URL}))
		wantRefused(t, err, rec)
	})
	t.Run("DNS rebinding: name resolving to loopback refused at dial", func(t *testing.T) {
		rec := newRecorder(t, nil)
		// retries: a refusal is final, not retried.
		n := newCall(t, dialOnlyDeps(t), map[string]any{"retries": 3})
		_, err := n.Run(context.Background(), nil, callIn(map[string]any{"url": withLocalhost(t, rec.srv.URL)}))
		wantRefused(t, err, rec)
	})
	t.Run("static and dynamic connections are pooled apart", func(t *testing.T) {
		rec := newRecorder(t, nil)
		n := newCall(t, dialOnlyDeps(t), map[string]any{"url": rec.srv.URL})
		if _, err := n.Run(context.Background(), nil, callIn(nil)); err != nil {
			t.Fatalf("static Run = %v", err)
		}
		// The same address from the url input must not reuse the static
		// connection: its own dial is checked and refused.
		_, err := n.Run(context.Background(), nil, callIn(map[string]any{"url": rec.srv.URL}))
		if err == nil || err.Error() != "destination not allowed" {
			t.Fatalf("dynamic Run error = %v, want destination not allowed", err)
		}
		rec.only(t)
	})
	t.Run("proxy input to loopback refused", func(t *testing.T) {
		rec := newRecorder(t, nil)
		n := newCall(t, policyDeps(t), map[string]any{"url": "http://example.test/"})
		_, err := n.Run(context.Background(), nil, callIn(map[string]any{"http_proxy": rec.srv.URL}))
		wantRefused(t, err, rec)
	})
	t.Run("proxy to loopback refused at dial", func(t *testing.T) {
		rec := newRecorder(t, nil)
		n := newCall(t, dialOnlyDeps(t), map[string]any{"url": "http://example.test/"})
		_, err := n.Run(context.Background(), nil, callIn(map[string]any{"http_proxy": withLocalhost(t, rec.srv.URL)}))
		wantRefused(t, err, rec)
	})
	t.Run("proxy allowed by allow", func(t *testing.T) {
		rec := newRecorder(t, nil)
		n := newCall(t, policyDeps(t, "127.0.0.1", "example.test"), map[string]any{"url": "http://example.test/x"})
		if _, err := n.Run(context.Background(), nil, callIn(map[string]any{"http_proxy": rec.srv.URL})); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if got := rec.only(t).URI; got != "http://example.test/x" {
			t.Errorf("proxy got %q, want the absolute URI", got)
		}
	})
	t.Run("non-http scheme from the url input", func(t *testing.T) {
		n := newCall(t, policyDeps(t), map[string]any{})
		_, err := n.Run(context.Background(), nil, callIn(map[string]any{"url": "file:///etc/passwd"}))
		if err == nil || !strings.HasPrefix(err.Error(), "invalid URL") {
			t.Errorf("Run error = %v, want invalid URL", err)
		}
	})
}
