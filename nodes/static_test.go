package nodes

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/engine"
)

func TestStaticDecodeErrors(t *testing.T) {
	long := strings.Repeat("k", 256)
	tests := []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{"missing", map[string]any{}, []string{"values: required field missing"}},
		{"null", map[string]any{"values": nil}, []string{"values: required field missing"}},
		{"not an object", map[string]any{"values": "x"}, []string{"values: expected object, got string"}},
		{"array", map[string]any{"values": []any{1}}, []string{"values: expected object, got array"}},
		{"empty key", map[string]any{"values": map[string]any{"": 1, "ok": 2}},
			[]string{"values.: length must be between 1 and 255, got 0"}},
		{"long key", map[string]any{"values": map[string]any{long: 1}},
			[]string{"values." + long + ": length must be between 1 and 255, got 256"}},
		{"unknown field", map[string]any{"values": map[string]any{"a": 1}, "value": 1},
			[]string{"value: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := decodeForTest(staticKind(), tt.values)
			if got := errStrings(errs); !slices.Equal(got, tt.want) {
				t.Errorf("Decode(%v) = %q, want %q", tt.values, got, tt.want)
			}
		})
	}
}

func TestStaticDecl(t *testing.T) {
	values := map[string]any{
		"b": "x", "a": 1, "c": true, "d": []any{1}, "e": map[string]any{"x": 1}, "f": nil, "g": 1.5,
		strings.Repeat("k", 255): "max",
	}
	d, errs := decodeForTest(staticKind(), map[string]any{"values": values})
	if len(errs) > 0 {
		t.Fatalf("Decode = %v, want no errors", errs)
	}
	want := []engine.Field{
		{Name: "a", Type: engine.TypeNumber},
		{Name: "b", Type: engine.TypeString},
		{Name: "c", Type: engine.TypeBoolean},
		{Name: "d", Type: engine.TypeArray},
		{Name: "e", Type: engine.TypeObject},
		{Name: "f", Type: engine.TypeAny},
		{Name: "g", Type: engine.TypeNumber},
		{Name: strings.Repeat("k", 255), Type: engine.TypeString},
	}
	if !slices.Equal(d.Outputs, want) {
		t.Errorf("Outputs = %v, want %v", d.Outputs, want)
	}
	if d.IO != engine.KeyOutput|engine.KeyOutputs || d.Input != engine.TypeNone || d.Async {
		t.Errorf("Decl = IO %b, Input %v, Async %v; want output|outputs, none, false", d.IO, d.Input, d.Async)
	}
	if !reflect.DeepEqual(d.Literal, values) {
		t.Errorf("Literal = %v, want %v", d.Literal, values)
	}
}

func TestStaticRun(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		want   []any
	}{
		{"fields in byte order", map[string]any{"b": "x", "a": 1, "C": nil},
			[]any{nil, 1, "x"}},
		// 13.12: the literal a static exit takes its headers from.
		{"13.12 headers", map[string]any{"content-type": "application/json", "BODY": `{"message": "Unauthorized"}`},
			[]any{`{"message": "Unauthorized"}`, "application/json"}},
		{"no fields", map[string]any{}, []any{map[string]any{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := mustBuild(t, staticKind(), map[string]any{"values": tt.values}, nil, false)
			got, err := n.Run(context.Background(), testEnv(nil), nil)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Run(%v) = %v, %v, want %v", tt.values, got, err, tt.want)
			}
			// The caller owns the returned slice.
			clear(got)
			if again, _ := n.Run(context.Background(), testEnv(nil), nil); !reflect.DeepEqual(again, tt.want) {
				t.Errorf("Run(%v) after changing its result = %v, want %v", tt.values, again, tt.want)
			}
		})
	}
}
