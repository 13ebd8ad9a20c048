package nodes

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/engine"
)

// testLoc is the location every test node is decoded at.
const testLoc = `nodes[0] "N" (test)`

// decodeForTest decodes a node's attributes as the engine does.
func decodeForTest(k engine.Kind, values map[string]any) (*engine.Decl, []error) {
	return engine.DecodeAttrs(testLoc, values, k)
}

// errStrings returns the messages without the node location.
func errStrings(errs []error) []string {
	out := make([]string, len(errs))
	for i, err := range errs {
		out[i] = strings.TrimPrefix(err.Error(), testLoc+": ")
	}
	return out
}

// mustBuild decodes values and builds the node with the given inputs.
func mustBuild(t *testing.T, k engine.Kind, values map[string]any, inputs []engine.Field, connected bool) engine.Node {
	t.Helper()
	d, errs := decodeForTest(k, values)
	if len(errs) > 0 {
		t.Fatalf("Decode(%v) = %v, want no errors", values, errs)
	}
	n, err := d.Build(&engine.BuildInfo{Name: "N", InputFields: inputs, InputConnected: connected})
	if err != nil {
		t.Fatalf("Build(%v) = %v, want no error", values, err)
	}
	return n
}

// fields returns user-defined input fields of type any.
func fields(names ...string) []engine.Field {
	out := make([]engine.Field, len(names))
	for i, n := range names {
		out[i] = engine.Field{Name: n, Type: engine.TypeAny}
	}
	return out
}

var selfInput = []engine.Field{{Name: engine.SelfField, Type: engine.TypeAny}}

// fakeExchange serves properties from a map and records SETs; every other
// method is unused by pure nodes.
type fakeExchange struct {
	props    map[string]any
	sets     []setCall
	setErr   map[string]error
	consumer map[string]any // what a SET of kong.client.consumer authenticates
}

type setCall struct {
	name string
	v    any
}

var _ engine.Exchange = (*fakeExchange)(nil)

func (f *fakeExchange) Request(context.Context, string) (any, error) { return nil, nil }
func (f *fakeExchange) ServiceResponse(context.Context, string) (any, error) {
	return nil, nil
}
func (f *fakeExchange) ApplyServiceRequest(*engine.Message) error { return nil }
func (f *fakeExchange) ApplyResponse(*engine.Message) error       { return nil }

func (f *fakeExchange) Property(name string) (any, error) { return f.props[name], nil }

func (f *fakeExchange) SetProperty(name string, v any) (any, error) {
	f.sets = append(f.sets, setCall{name, v})
	if err := f.setErr[name]; err != nil {
		return nil, err
	}
	if name == propConsumer {
		return f.consumer, nil
	}
	if f.props == nil {
		f.props = map[string]any{}
	}
	if v == nil {
		delete(f.props, name)
	} else {
		f.props[name] = v
	}
	return v, nil
}

func testEnv(x engine.Exchange) *engine.Env {
	return &engine.Env{Exchange: x, Logger: slog.Default()}
}

// jsonText renders a runtime value for comparisons.
func jsonText(v any) string {
	b, err := engine.EncodeJSON(v)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

// errText is "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
