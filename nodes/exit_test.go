package nodes

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/engine"
)

const exitLoc = `nodes[3] "EXIT" (exit)`

func TestExitAttributes(t *testing.T) {
	tests := []struct {
		name   string
		attrs  map[string]any
		want   []string
		status int
	}{
		{name: "default status", attrs: map[string]any{}, status: 200},
		{name: "status", attrs: map[string]any{"status": 404}, status: 404},
		{name: "bounds", attrs: map[string]any{"status": 599.0, "warn_headers_sent": true}, status: 599},
		{name: "below", attrs: map[string]any{"status": 99}, want: []string{exitLoc + ": status: must be between 200 and 599, got 99"}},
		{name: "above", attrs: map[string]any{"status": 600}, want: []string{exitLoc + ": status: must be between 200 and 599, got 600"}},
		{name: "zero", attrs: map[string]any{"status": 0}, want: []string{exitLoc + ": status: must be between 200 and 599, got 0"}},
		{name: "string", attrs: map[string]any{"status": "200"}, want: []string{exitLoc + ": status: expected integer, got string"}},
		{name: "warn_headers_sent type", attrs: map[string]any{"warn_headers_sent": "no"},
			want: []string{exitLoc + ": warn_headers_sent: expected boolean, got string"}},
		{name: "unknown", attrs: map[string]any{"body": "x"}, want: []string{exitLoc + ": body: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decl, errs := engine.DecodeAttrs(exitLoc, tt.attrs, exitKind())
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decode %v = %q, want %q", tt.attrs, got, tt.want)
			}
			if tt.want != nil {
				return
			}
			if decl.IO != engine.KeyInput|engine.KeyInputs || decl.Async || len(decl.Outputs) != 0 || decl.Output != engine.TypeNone {
				t.Errorf("decl = %+v", decl)
			}
			if !reflect.DeepEqual(decl.Inputs, []engine.Field{{Name: "body", Type: engine.TypeAny}, {Name: "headers", Type: engine.TypeMap}}) {
				t.Errorf("Inputs = %v", decl.Inputs)
			}
			n, err := decl.Build(&engine.BuildInfo{Name: "EXIT", InputFields: decl.Inputs})
			if err != nil {
				t.Fatal(err)
			}
			if got := n.(*exitNode).status; got != tt.status {
				t.Errorf("status = %d, want %d", got, tt.status)
			}
		})
	}
}

func TestExitRun(t *testing.T) {
	tests := []struct {
		name     string
		status   any
		body     any
		headers  any
		bodyCT   string
		want     *engine.Response
		wantErr  string
		fieldsRv bool // InputFields given in reverse order
	}{
		{name: "null body is empty, no Content-Type", want: &engine.Response{Status: 200, Headers: nil}},
		{name: "object is JSON", status: 201, body: map[string]any{"uuid": "0b7e2a40", "author": "Yours Truly"},
			want: &engine.Response{Status: 201, Headers: []engine.HeaderLine{{Name: "Content-Type", Values: []string{"application/json"}}},
				Body: []byte(`{"author":"Yours Truly","uuid":"0b7e2a40"}`)}},
		{name: "number is JSON", body: 30.0,
			want: &engine.Response{Status: 200, Headers: []engine.HeaderLine{{Name: "Content-Type", Values: []string{"application/json"}}}, Body: []byte("30")}},
		{name: "string is text", body: "Unauthorized",
			want: &engine.Response{Status: 200, Headers: []engine.HeaderLine{{Name: "Content-Type", Values: []string{"text/plain; charset=utf-8"}}}, Body: []byte("Unauthorized")}},
		{name: "empty string: no Content-Type", body: "",
			want: &engine.Response{Status: 200, Headers: nil, Body: []byte{}}},
		{name: "string from json_to_xml", body: "<root/>", bodyCT: "application/xml",
			want: &engine.Response{Status: 200, Headers: []engine.HeaderLine{{Name: "Content-Type", Values: []string{"application/xml"}}}, Body: []byte("<root/>")}},
		{name: "headers input Content-Type wins", body: map[string]any{"a": 1},
			headers: map[string]any{"content-type": "application/vnd.x+json", "X-B": "1"},
			want: &engine.Response{Status: 200, Headers: []engine.HeaderLine{
				{Name: "Content-Type", Values: []string{"application/vnd.x+json"}}, {Name: "X-B", Values: []string{"1"}}}, Body: []byte(`{"a":1}`)}},
		{name: "Content-Type null: none added", body: "x", headers: map[string]any{"Content-Type": nil},
			want: &engine.Response{Status: 200, Headers: []engine.HeaderLine{{Name: "Content-Type"}}, Body: []byte("x")}},
		{name: "13.6 headers, null kept as removal, hop-by-hop dropped", status: 200,
			headers: map[string]any{"X-Ignored": nil, "X-Add-Me": "added", "Connection": "close", "Content-Length": "9",
				"Transfer-Encoding": "chunked", "Www-Authenticate": []any{"Basic", "Bearer"}},
			want: &engine.Response{Status: 200, Headers: []engine.HeaderLine{
				{Name: "Www-Authenticate", Values: []string{"Basic", "Bearer"}},
				{Name: "X-Add-Me", Values: []string{"added"}}, {Name: "X-Ignored"}}}},
		{name: "Content-Type inserted in name order", body: []any{}, headers: map[string]any{"A": "1", "Z": "2"},
			want: &engine.Response{Status: 200, Headers: []engine.HeaderLine{
				{Name: "A", Values: []string{"1"}}, {Name: "Content-Type", Values: []string{"application/json"}}, {Name: "Z", Values: []string{"2"}}},
				Body: []byte("[]")}},
		{name: "inputs in another field order", body: "b", headers: map[string]any{"X": "h"}, fieldsRv: true,
			want: &engine.Response{Status: 200, Headers: []engine.HeaderLine{
				{Name: "Content-Type", Values: []string{"text/plain; charset=utf-8"}}, {Name: "X", Values: []string{"h"}}}, Body: []byte("b")}},
		{name: "invalid header value", headers: map[string]any{"X-A": "a\r\nSet-Cookie: x"}, wantErr: `invalid value for header "X-A"`},
		{name: "invalid header name", headers: map[string]any{"X A": "1"}, wantErr: `invalid header name "X A"`},
		{name: "headers not a map", headers: "oops", wantErr: "expected map, got string"},
		{name: "unencodable body", body: math.Inf(1), wantErr: "invalid body: json: unsupported value: +Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs := map[string]any{}
			if tt.status != nil {
				attrs["status"] = tt.status
			}
			decl, errs := engine.DecodeAttrs(exitLoc, attrs, exitKind())
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			fields := decl.Inputs
			in := []any{tt.body, tt.headers}
			cts := []string{tt.bodyCT, ""}
			if tt.fieldsRv {
				fields = []engine.Field{decl.Inputs[1], decl.Inputs[0]}
				in = []any{tt.headers, tt.body}
				cts = []string{"", tt.bodyCT}
			}
			n, err := decl.Build(&engine.BuildInfo{Name: "EXIT", InputFields: fields, InputContentTypes: cts})
			if err != nil {
				t.Fatal(err)
			}
			var got []*engine.Response
			env := engine.NewEnv(nil, "req-1", nil, func(r *engine.Response) { got = append(got, r) })
			out, err := n.Run(context.Background(), env, in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || len(got) != 0 {
					t.Fatalf("Run error = %v (exits %d), want %q and no exit", err, len(got), tt.wantErr)
				}
				return
			}
			if err != nil || out != nil {
				t.Fatalf("Run = %v, %v, want no outputs", out, err)
			}
			if len(got) != 1 {
				t.Fatalf("Exit called %d times, want 1", len(got))
			}
			if !reflect.DeepEqual(got[0], tt.want) && !(len(got[0].Headers) == 0 && len(tt.want.Headers) == 0 &&
				got[0].Status == tt.want.Status && string(got[0].Body) == string(tt.want.Body)) {
				t.Errorf("response = %s, want %s", fmtResponse(got[0]), fmtResponse(tt.want))
			}
		})
	}
}

func fmtResponse(r *engine.Response) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status %d", r.Status)
	for _, l := range r.Headers {
		if l.Values == nil {
			fmt.Fprintf(&b, " | %s: <remove>", l.Name)
			continue
		}
		fmt.Fprintf(&b, " | %s: %s", l.Name, strings.Join(l.Values, ", "))
	}
	fmt.Fprintf(&b, " | body %q", r.Body)
	return b.String()
}
