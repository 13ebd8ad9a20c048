package nodes

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/engine"
)

func TestPropertyDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{"missing", map[string]any{}, []string{"property: required field missing"}},
		{"not a string", map[string]any{"property": 5}, []string{"property: expected string, got number"}},
		{"empty", map[string]any{"property": ""}, []string{"property: length must be between 1 and 255, got 0"}},
		{"too long", map[string]any{"property": "kong.ctx.shared." + strings.Repeat("k", 240)},
			[]string{"property: length must be between 1 and 255, got 256"}},
		{"unknown", map[string]any{"property": "kong.foo"}, []string{`property: unknown property "kong.foo"`}},
		{"empty ctx key", map[string]any{"property": "kong.ctx.shared."},
			[]string{`property: unknown property "kong.ctx.shared."`}},
		{"empty configuration key", map[string]any{"property": "kong.configuration."},
			[]string{`property: unknown property "kong.configuration."`}},
		{"no prefix", map[string]any{"property": "client.ip"}, []string{`property: unknown property "client.ip"`}},
		{"content_type", map[string]any{"property": "kong.client.ip", "content_type": "application/xml"},
			[]string{`content_type: must be one of: application/json, application/octet-stream, text/plain; got "application/xml"`}},
		{"non_nil", map[string]any{"property": "kong.client.ip", "non_nil": "yes"},
			[]string{"non_nil: expected boolean, got string"}},
		{"all at once", map[string]any{"property": "kong.nope", "content_type": 1, "non_nil": 0, "extra": true}, []string{
			`property: unknown property "kong.nope"`,
			"content_type: expected string, got number",
			"non_nil: expected boolean, got number",
			"extra: unknown field",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, errs := decodeForTest(propertyKind(), tt.values)
			if got := errStrings(errs); !slices.Equal(got, tt.want) {
				t.Errorf("Decode(%v) = %q, want %q", tt.values, got, tt.want)
			}
			if strings.HasPrefix(tt.want[0], "property:") && (d.Mode != nil || d.Build != nil) {
				t.Errorf("Decode(%v) with errors set Mode or Build", tt.values)
			}
		})
	}
}

func TestPropertyDecl(t *testing.T) {
	d, errs := decodeForTest(propertyKind(), map[string]any{
		"property": "kong.ctx.shared.a", "content_type": "text/plain", "non_nil": true,
	})
	if len(errs) > 0 {
		t.Fatalf("Decode = %v, want no errors", errs)
	}
	if d.IO != engine.KeyInput|engine.KeyOutput || d.Input != engine.TypeAny || d.Output != engine.TypeAny ||
		d.ModeField != "property" || d.Async || len(d.Inputs) > 0 || len(d.Outputs) > 0 || d.UserInputs {
		t.Errorf("Decl = %+v, want input|output, any -> any, ModeField property", d)
	}
}

func TestPropertyMode(t *testing.T) {
	access := engine.ModeRules{AccessOnly: true}
	response := engine.ModeRules{ResponseOnly: true}
	tests := []struct {
		property string
		set      bool
		want     engine.ModeRules
		wantErr  string
	}{
		{"kong.client.ip", false, engine.ModeRules{}, ""},
		{"kong.client.ip", true, engine.ModeRules{}, `property "kong.client.ip" is read-only and cannot be set`},
		{"kong.version", true, engine.ModeRules{}, `property "kong.version" is read-only and cannot be set`},
		{"kong.configuration.log_level", false, engine.ModeRules{}, ""},
		{"kong.configuration.log_level", true, engine.ModeRules{}, `property "kong.configuration.log_level" is read-only and cannot be set`},
		{"kong.service.response.status", false, response, ""},
		{"kong.response.source", false, response, ""},
		{"kong.service.target", false, engine.ModeRules{}, `property "kong.service.target" is write-only; connect an input to set it`},
		{"kong.response.status", false, engine.ModeRules{}, `property "kong.response.status" is write-only; connect an input to set it`},
		{"kong.service.request_scheme", false, engine.ModeRules{}, `property "kong.service.request_scheme" is write-only; connect an input to set it`},
		{"kong.service.target", true, access, ""},
		{"kong.service.upstream", true, access, ""},
		{"kong.service.request.scheme", true, access, ""},
		{"kong.service.request_scheme", true, access, ""},
		{"kong.client.consumer", true, access, ""},
		{"kong.client.consumer", false, engine.ModeRules{}, ""},
		{"kong.response.status", true, engine.ModeRules{}, ""},
		{"kong.ctx.shared.a.b", false, engine.ModeRules{}, ""},
		{"kong.ctx.shared.a.b", true, engine.ModeRules{}, ""},
		{"kong.ctx.plugin.x", true, engine.ModeRules{}, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/set=%v", tt.property, tt.set), func(t *testing.T) {
			d, errs := decodeForTest(propertyKind(), map[string]any{"property": tt.property})
			if len(errs) > 0 {
				t.Fatalf("Decode = %v, want no errors", errs)
			}
			got, err := d.Mode(tt.set)
			if got != tt.want || errText(err) != tt.wantErr {
				t.Errorf("Mode(%v) = %+v, %v, want %+v, %q", tt.set, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestLookupProperty(t *testing.T) {
	tests := []struct {
		name      string
		canonical string
		access    PropertyAccess
		ok        bool
	}{
		{"kong.client.ip", "kong.client.ip", PropertyGet, true},
		{"kong.node.id", "kong.node.id", PropertyGet, true},
		{"kong.client.consumer", "kong.client.consumer", PropertyGet | PropertySet, true},
		{"kong.service.request_scheme", "kong.service.request.scheme", PropertySet, true},
		{"kong.service.request.scheme", "kong.service.request.scheme", PropertySet, true},
		{"kong.ctx.shared.a.b", "kong.ctx.shared.a.b", PropertyGet | PropertySet, true},
		{"kong.ctx.plugin..", "kong.ctx.plugin..", PropertyGet | PropertySet, true},
		{"kong.configuration.proxy_listen", "kong.configuration.proxy_listen", PropertyGet, true},
		{"kong.ctx.shared", "", 0, false},
		{"kong.ctx.other.a", "", 0, false},
		{"Kong.client.ip", "", 0, false},
	}
	for _, tt := range tests {
		canonical, access, ok := LookupProperty(tt.name)
		if canonical != tt.canonical || access != tt.access || ok != tt.ok {
			t.Errorf("LookupProperty(%q) = %q, %b, %v, want %q, %b, %v",
				tt.name, canonical, access, ok, tt.canonical, tt.access, tt.ok)
		}
	}
}

func TestPropertyGet(t *testing.T) {
	props := map[string]any{
		"kong.client.ip":           "10.0.0.1",
		"kong.client.port":         1234,
		"kong.router.service":      map[string]any{"name": "svc"},
		"kong.ctx.shared.json":     `{"a":[1,2]}`,
		"kong.ctx.shared.bad":      `{"a":`,
		"kong.ctx.shared.nulltext": "null",
		"kong.ctx.shared.obj":      map[string]any{"k": "v"},
		"kong.ctx.shared.a.b":      "dotted",
	}
	tests := []struct {
		name    string
		attrs   map[string]any
		want    any
		wantErr string
	}{
		{"string", map[string]any{"property": "kong.client.ip"}, "10.0.0.1", ""},
		{"number", map[string]any{"property": "kong.client.port"}, 1234, ""},
		{"entity", map[string]any{"property": "kong.router.service"}, map[string]any{"name": "svc"}, ""},
		{"unset is nil", map[string]any{"property": "kong.ctx.shared.none"}, nil, ""},
		{"dotted ctx key", map[string]any{"property": "kong.ctx.shared.a.b"}, "dotted", ""},
		// 13.13 #9: a non_nil getter of an unset key fails.
		{"non_nil unset", map[string]any{"property": "kong.ctx.shared.src", "non_nil": true}, nil,
			`property "kong.ctx.shared.src" is nil`},
		{"non_nil set", map[string]any{"property": "kong.client.ip", "non_nil": true}, "10.0.0.1", ""},
		{"json decodes strings", map[string]any{"property": "kong.ctx.shared.json", "content_type": "application/json"},
			map[string]any{"a": []any{1, 2}}, ""},
		{"json passes non-strings", map[string]any{"property": "kong.ctx.shared.obj", "content_type": "application/json"},
			map[string]any{"k": "v"}, ""},
		{"json invalid", map[string]any{"property": "kong.ctx.shared.bad", "content_type": "application/json"}, nil,
			`invalid JSON in property "kong.ctx.shared.bad"`},
		{"json null text non_nil", map[string]any{"property": "kong.ctx.shared.nulltext", "content_type": "application/json", "non_nil": true},
			nil, `property "kong.ctx.shared.nulltext" is nil`},
		{"text/plain keeps strings", map[string]any{"property": "kong.ctx.shared.json", "content_type": "text/plain"},
			`{"a":[1,2]}`, ""},
		{"octet-stream keeps strings", map[string]any{"property": "kong.ctx.shared.json", "content_type": "application/octet-stream"},
			`{"a":[1,2]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := &fakeExchange{props: props}
			n := mustBuild(t, propertyKind(), tt.attrs, nil, false)
			got, err := n.Run(context.Background(), testEnv(x), nil)
			if errText(err) != tt.wantErr {
				t.Fatalf("Run(%v) error = %v, want %q", tt.attrs, err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, []any{tt.want}) {
				t.Errorf("Run(%v) = %v, want [%v]", tt.attrs, got, tt.want)
			}
			if len(x.sets) > 0 {
				t.Errorf("Run(%v) set %v, want no SET", tt.attrs, x.sets)
			}
		})
	}
}

func TestPropertySet(t *testing.T) {
	consumer := map[string]any{"id": "C", "username": "alice"}
	tests := []struct {
		name     string
		attrs    map[string]any
		in       any
		want     any
		wantErr  string
		wantSets []setCall
	}{
		{"value", map[string]any{"property": "kong.service.upstream"}, "upstream-b", "upstream-b", "",
			[]setCall{{"kong.service.upstream", "upstream-b"}}},
		{"alias canonicalised", map[string]any{"property": "kong.service.request_scheme"}, "https", "https", "",
			[]setCall{{"kong.service.request.scheme", "https"}}},
		{"ctx object", map[string]any{"property": "kong.ctx.plugin.k"}, map[string]any{"a": 1}, map[string]any{"a": 1}, "",
			[]setCall{{"kong.ctx.plugin.k", map[string]any{"a": 1}}}},
		{"json encodes, outputs the input", map[string]any{"property": "kong.ctx.shared.k", "content_type": "application/json"},
			map[string]any{"b": 1, "a": "<&>"}, map[string]any{"b": 1, "a": "<&>"}, "",
			[]setCall{{"kong.ctx.shared.k", `{"a":"<&>","b":1}`}}},
		{"json string is encoded too", map[string]any{"property": "kong.ctx.shared.k", "content_type": "application/json"},
			"x", "x", "", []setCall{{"kong.ctx.shared.k", `"x"`}}},
		{"consumer outputs the authenticated consumer", map[string]any{"property": "kong.client.consumer"},
			map[string]any{"username": "alice"}, consumer, "",
			[]setCall{{"kong.client.consumer", map[string]any{"username": "alice"}}}},
		{"nil is a no-op", map[string]any{"property": "kong.response.status"}, nil, nil, "", nil},
		{"nil removes a ctx key", map[string]any{"property": "kong.ctx.shared.k"}, nil, nil, "",
			[]setCall{{"kong.ctx.shared.k", nil}}},
		{"nil with json removes a ctx key", map[string]any{"property": "kong.ctx.plugin.k", "content_type": "application/json"}, nil, nil, "",
			[]setCall{{"kong.ctx.plugin.k", nil}}},
		{"non_nil refuses nil", map[string]any{"property": "kong.ctx.shared.api_key", "non_nil": true}, nil, nil,
			`cannot set property "kong.ctx.shared.api_key" to nil`, nil},
		{"non_nil refuses nil on a no-op property", map[string]any{"property": "kong.service.target", "non_nil": true}, nil, nil,
			`cannot set property "kong.service.target" to nil`, nil},
		{"exchange error", map[string]any{"property": "kong.service.target"}, "bad target", nil, `invalid target "bad target"`,
			[]setCall{{"kong.service.target", "bad target"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := &fakeExchange{
				consumer: consumer,
				setErr:   map[string]error{"kong.service.target": errors.New(`invalid target "bad target"`)},
			}
			n := mustBuild(t, propertyKind(), tt.attrs, selfInput, true)
			got, err := n.Run(context.Background(), testEnv(x), []any{tt.in})
			if errText(err) != tt.wantErr {
				t.Fatalf("Run(%v) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, []any{tt.want}) {
				t.Errorf("Run(%v) = %v, want [%v]", tt.in, got, tt.want)
			}
			if !reflect.DeepEqual(x.sets, tt.wantSets) {
				t.Errorf("Run(%v) sets %v, want %v", tt.in, x.sets, tt.wantSets)
			}
		})
	}
}

// TestPropertyCopy is 13.13 #9: a non_nil getter feeding a non_nil setter.
func TestPropertyCopy(t *testing.T) {
	get := mustBuild(t, propertyKind(), map[string]any{"property": "kong.ctx.shared.src", "non_nil": true}, nil, false)
	set := mustBuild(t, propertyKind(), map[string]any{"property": "kong.ctx.shared.api_key", "non_nil": true}, selfInput, true)

	x := &fakeExchange{props: map[string]any{}}
	if _, err := get.Run(context.Background(), testEnv(x), nil); errText(err) != `property "kong.ctx.shared.src" is nil` {
		t.Errorf("GET of unset src = %v, want the nil error", err)
	}

	x.props["kong.ctx.shared.src"] = "k"
	v, err := get.Run(context.Background(), testEnv(x), nil)
	if err != nil {
		t.Fatalf("GET = %v", err)
	}
	if _, err := set.Run(context.Background(), testEnv(x), v); err != nil {
		t.Fatalf("SET(%v) = %v", v, err)
	}
	if got := x.props["kong.ctx.shared.api_key"]; got != "k" {
		t.Errorf("api_key = %v, want k", got)
	}
}
