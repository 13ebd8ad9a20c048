package nodes

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/engine"
)

// jsonXMLAttrs are the attributes of spec §13.8.
var jsonXMLAttrs = map[string]any{"attributes_name_prefix": "-", "attributes_block_name": nil, "text_block_name": "#text"}

const body138 = `{"root":{"name":"Alice","age":30,"is_student":false,"courses":["Math","Science"],` +
	`"address":{"street":"123 Main St","city":"Wonderland"},"null_value":null}}`

const xml138Compact = `<root><address><city>Wonderland</city><street>123 Main St</street></address><age>30</age>` +
	`<courses>Math</courses><courses>Science</courses><is_student>false</is_student><name>Alice</name>` +
	`<null_value>null</null_value></root>`

func TestJSONToXMLDecodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		attrs map[string]any
		want  []string
	}{
		{"no attribute naming", map[string]any{},
			[]string{"attributes_block_name: one of attributes_block_name or attributes_name_prefix is required"}},
		{"root name", map[string]any{"attributes_name_prefix": "@", "root_element_name": "1root"},
			[]string{`root_element_name: invalid XML name "1root"`}},
		{"root name with space", map[string]any{"attributes_name_prefix": "@", "root_element_name": "a b"},
			[]string{`root_element_name: invalid XML name "a b"`}},
		{"root name too long", map[string]any{"attributes_name_prefix": "@", "root_element_name": strings.Repeat("r", 65)},
			[]string{"root_element_name: length must be between 1 and 64, got 65"}},
		{"xpath is xml_to_json's", map[string]any{"attributes_name_prefix": "@", "xpath": "/a", "text_as_property": true},
			[]string{"text_as_property: unknown field", "xpath: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := decodeForTest(jsonToXMLKind(), tt.attrs)
			if got := errStrings(errs); !slices.Equal(got, tt.want) {
				t.Errorf("Decode(%v) = %q, want %q", tt.attrs, got, tt.want)
			}
		})
	}
}

func TestJSONToXMLDecl(t *testing.T) {
	d, errs := decodeForTest(jsonToXMLKind(), jsonXMLAttrs)
	if len(errs) > 0 {
		t.Fatalf("Decode = %v", errs)
	}
	if d.IO != engine.KeyInput|engine.KeyInputs|engine.KeyOutput || d.Input != engine.TypeAny || !d.UserInputs ||
		d.Output != engine.TypeString || d.OutputContentType != "application/xml" || d.Async {
		t.Errorf("Decl = %+v, want input|inputs|output, any -> string, user inputs, application/xml", d)
	}
}

func runJSONXML(t *testing.T, attrs map[string]any, inputs []engine.Field, in ...any) (any, error) {
	t.Helper()
	n := mustBuild(t, jsonToXMLKind(), attrs, inputs, true)
	out, err := n.Run(context.Background(), testEnv(nil), in)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// §13.8: golden-exact, from the decoded request body and from JSON text.
func TestJSONToXML138(t *testing.T) {
	decoded, err := engine.DecodeJSON([]byte(body138))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []any{decoded, body138} {
		got, err := runJSONXML(t, jsonXMLAttrs, selfInput, in)
		if err != nil || got != xml138Compact {
			t.Errorf("Run(13.8) = %v, %v, want %s", got, err, xml138Compact)
		}
	}
	// And back (§13.9): structurally the same document.
	back, err := runXML(t, xmlAttrs, xml138Compact)
	want := `{"root":{"address":{"city":"Wonderland","street":"123 Main St"},"age":30,"courses":["Math","Science"],"is_student":false,"name":"Alice","null_value":null}}`
	if err != nil || back != want {
		t.Errorf("xml_to_json(13.8 output) = %s, %v, want %s", back, err, want)
	}
}

func TestJSONToXML(t *testing.T) {
	prefix := map[string]any{"attributes_name_prefix": "@"}
	block := map[string]any{"attributes_block_name": "attrs"}
	rooted := map[string]any{"attributes_name_prefix": "@", "root_element_name": "doc"}
	tests := []struct {
		name  string
		attrs map[string]any
		in    any
		want  any
	}{
		{"null", prefix, nil, nil},
		{"null JSON text", prefix, "null", nil},
		{"scalars", prefix, map[string]any{"s": "x", "i": 1, "f": 1.5, "t": true, "n": nil},
			`<f>1.5</f><i>1</i><n>null</n><s>x</s><t>true</t>`},
		{"big numbers", prefix, map[string]any{"a": 1e21, "b": 1e20}, `<a>1e+21</a><b>100000000000000000000</b>`},
		{"empties", prefix, map[string]any{"s": "", "o": map[string]any{}, "a": []any{}}, `<a></a><o></o><s></s>`},
		{"escaping", prefix, map[string]any{"a": `<&>"'` + "\r\n\t\x01\xff"}, "<a>&lt;&amp;&gt;\"'&#xD;\n\t\uFFFD\uFFFD</a>"},
		{"attributes by prefix", prefix, map[string]any{"a": map[string]any{"@z": "1", "@id": 7, "@b": true, "@n": nil, "child": "c"}},
			`<a b="true" id="7" n="null" z="1"><child>c</child></a>`},
		{"attribute escaping", prefix, map[string]any{"a": map[string]any{"@v": "<\"&'\n\t>"}}, `<a v="&lt;&quot;&amp;'&#xA;&#x9;&gt;"></a>`},
		{"attributes in a block", block, map[string]any{"a": map[string]any{"attrs": map[string]any{"y": 2, "x": "1"}, "#text": "t"}},
			`<a x="1" y="2">t</a>`},
		{"block and prefix", map[string]any{"attributes_block_name": "attrs", "attributes_name_prefix": "-"},
			map[string]any{"a": map[string]any{"attrs": map[string]any{"x": "block", "y": "y"}, "-x": "prefix"}},
			`<a x="prefix" y="y"></a>`},
		{"text then children", prefix, map[string]any{"a": map[string]any{"#text": 5, "b": "c"}}, `<a>5<b>c</b></a>`},
		{"custom text block", map[string]any{"attributes_name_prefix": "@", "text_block_name": "value"},
			map[string]any{"a": map[string]any{"value": "v", "b": 1}}, `<a>v<b>1</b></a>`},
		{"arrays", prefix, map[string]any{"a": []any{1, map[string]any{"@k": "v"}, []any{"x", "y"}, []any{}}},
			`<a>1</a><a k="v"></a><a><item>x</item><item>y</item></a><a></a>`},
		{"nested arrays inside items", prefix, map[string]any{"a": []any{[]any{[]any{1, 2}}}},
			`<a><item>1</item><item>2</item></a>`},
		{"root object", rooted, map[string]any{"b": 1, "@id": "r"}, `<doc id="r"><b>1</b></doc>`},
		{"root array", rooted, []any{1, "two", map[string]any{"x": nil}, []any{3}}, `<doc><item>1</item><item>two</item><item><x>null</x></item><item>3</item></doc>`},
		{"root empty array", rooted, []any{}, `<doc></doc>`},
		{"root scalar", rooted, "\"text\"", `<doc>text</doc>`},
		{"root number", rooted, 42, `<doc>42</doc>`},
		{"JSON text", prefix, `{"b":[1,2],"a":{"@x":1}}`, `<a x="1"></a><b>1</b><b>2</b>`},
		{"unicode names", prefix, map[string]any{"ñame": "ü", "soap:Body": map[string]any{"a-b.c_d": 1}}, `<soap:Body><a-b.c_d>1</a-b.c_d></soap:Body><ñame>ü</ñame>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runJSONXML(t, tt.attrs, selfInput, tt.in)
			if err != nil || got != tt.want {
				t.Errorf("Run(%v) = %v, %v, want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestJSONToXMLUserInputs(t *testing.T) {
	got, err := runJSONXML(t, jsonXMLAttrs, fields("b", "a"), map[string]any{"-k": 1}, nil)
	if want := `<a>null</a><b k="1"></b>`; err != nil || got != want {
		t.Errorf("Run(user inputs) = %v, %v, want %s", got, err, want)
	}
}

func TestJSONToXMLErrors(t *testing.T) {
	prefix := map[string]any{"attributes_name_prefix": "@"}
	tests := []struct {
		name  string
		attrs map[string]any
		in    any
		want  string
	}{
		{"invalid JSON", prefix, `{"a":`, "invalid JSON: unexpected EOF"},
		{"not JSON", prefix, `<a/>`, "invalid JSON: invalid character '<' looking for beginning of value"},
		{"array without root", prefix, []any{1}, "input must be an object when root_element_name is unset"},
		{"scalar without root", prefix, 1, "input must be an object when root_element_name is unset"},
		{"JSON scalar without root", prefix, `"x"`, "input must be an object when root_element_name is unset"},
		{"bad name", prefix, map[string]any{"1a": 1}, `invalid XML name "1a"`},
		{"empty name", prefix, map[string]any{"": 1}, `invalid XML name ""`},
		{"nested bad name", prefix, map[string]any{"a": map[string]any{"b c": 1}}, `invalid XML name "b c"`},
		{"bad attribute name", prefix, map[string]any{"a": map[string]any{"@": 1}}, `invalid XML name ""`},
		{"object attribute", prefix, map[string]any{"a": map[string]any{"@x": map[string]any{}}}, `invalid attribute value for "x"`},
		{"array attribute", prefix, map[string]any{"a": map[string]any{"@x": []any{1}}}, `invalid attribute value for "x"`},
		{"block not an object", map[string]any{"attributes_block_name": "attrs"}, map[string]any{"a": map[string]any{"attrs": 1}},
			`invalid attribute value for "attrs"`},
		{"block value", map[string]any{"attributes_block_name": "attrs"}, map[string]any{"a": map[string]any{"attrs": map[string]any{"x": []any{}}}},
			`invalid attribute value for "x"`},
		{"object text", prefix, map[string]any{"a": map[string]any{"#text": map[string]any{}}}, `invalid text value for "#text"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runJSONXML(t, tt.attrs, selfInput, tt.in)
			if errText(err) != tt.want {
				t.Errorf("Run(%v) = %v, %v, want error %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestIsXMLName(t *testing.T) {
	for _, s := range []string{"a", "_", ":", "a1", "a-b", "a.b", "ñ", "ns:el", "A·B", "日本"} {
		if !isXMLName(s) {
			t.Errorf("isXMLName(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", "1", "-a", ".a", "a b", "a>b", "a\x00", "#text", "\xff", "a/b", "·a"} {
		if isXMLName(s) {
			t.Errorf("isXMLName(%q) = true, want false", s)
		}
	}
}

// An unconnected node reads null and writes null.
func TestJSONToXMLUnconnected(t *testing.T) {
	got, err := runJSONXML(t, jsonXMLAttrs, nil)
	if err != nil || got != nil {
		t.Errorf("Run(unconnected) = %v, %v, want nil", got, err)
	}
}

func BenchmarkJSONToXML(b *testing.B) {
	v, _ := engine.DecodeJSON([]byte(body138))
	d, _ := decodeForTest(jsonToXMLKind(), jsonXMLAttrs)
	n, _ := d.Build(&engine.BuildInfo{InputFields: selfInput})
	in := []any{v}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.Run(context.Background(), nil, in); err != nil {
			b.Fatal(err)
		}
	}
}
