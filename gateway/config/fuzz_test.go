package config

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDeclarative feeds arbitrary text to the loader: it must never panic,
// and a failure is always a *DeclarativeError that renders.
func FuzzDeclarative(f *testing.F) {
	f.Add([]byte(invalidDoc))
	f.Add([]byte("_format_version: \"1.1\"\nroutes:\n- paths: [\"/v\\\\d+\", /a%2E]\n"))
	f.Add([]byte(`{"_format_version":"3.0","services":[{"url":"http://a.test:80/x","routes":[{"paths":["/"]}]}]}`))
	lim := Limits{MaxBytes: 1 << 20, MaxDepth: 100, MaxAliasNodes: 10_000}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := LoadDeclarative(data, LoadOptions{Plugins: fakeSchemas{}, Limits: lim, Rand: &zeroRand{}})
		if err != nil {
			var de *DeclarativeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DeclarativeError", err)
			}
			_ = de.Error()
			_ = de.Lines()
			if _, err := json.Marshal(de.Flattened); err != nil {
				t.Fatalf("flattened errors do not marshal: %v", err)
			}
			return
		}
		out, err := Export(e)
		if err != nil {
			t.Fatalf("Export = %v", err)
		}
		if _, err := LoadDeclarative(out, LoadOptions{Plugins: fakeSchemas{}, Rand: &zeroRand{}}); err != nil {
			t.Fatalf("export of a valid document does not load: %v\n%s", err, out)
		}
	})
}
