package nodes

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/datakit-gateway/datakit/engine"
)

// xmlAttrs are the attributes of spec §13.9.
var xmlAttrs = map[string]any{
	"attributes_block_name": nil, "attributes_name_prefix": "-", "recognize_type": true,
	"text_block_name": "#text", "xpath": nil,
}

func withAttrs(base map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestXMLToJSONDecodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		attrs map[string]any
		want  []string
	}{
		{"no attribute naming", map[string]any{},
			[]string{"attributes_block_name: one of attributes_block_name or attributes_name_prefix is required"}},
		{"both null", map[string]any{"attributes_block_name": nil, "attributes_name_prefix": nil},
			[]string{"attributes_block_name: one of attributes_block_name or attributes_name_prefix is required"}},
		{"prefix too long", map[string]any{"attributes_name_prefix": strings.Repeat("p", 33)},
			[]string{"attributes_name_prefix: length must be between 1 and 32, got 33"}},
		{"empty block", map[string]any{"attributes_block_name": ""},
			[]string{"attributes_block_name: length must be between 1 and 32, got 0"}},
		{"text block type", map[string]any{"attributes_name_prefix": "@", "text_block_name": 1},
			[]string{"text_block_name: expected string, got number"}},
		{"booleans", map[string]any{"attributes_name_prefix": "@", "text_as_property": "yes", "recognize_type": 0},
			[]string{"text_as_property: expected boolean, got string", "recognize_type: expected boolean, got number"}},
		{"xpath syntax", map[string]any{"attributes_name_prefix": "@", "xpath": "//a["},
			[]string{"xpath: invalid XPath expression: expression must evaluate to a node-set"}},
		{"xpath too long", map[string]any{"attributes_name_prefix": "@", "xpath": "/" + strings.Repeat("a", 256)},
			[]string{"xpath: length must be between 1 and 256, got 257"}},
		{"root_element_name is json_to_xml's", map[string]any{"attributes_name_prefix": "@", "root_element_name": "r"},
			[]string{"root_element_name: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := decodeForTest(xmlToJSONKind(), tt.attrs)
			if got := errStrings(errs); !slices.Equal(got, tt.want) {
				t.Errorf("Decode(%v) = %q, want %q", tt.attrs, got, tt.want)
			}
		})
	}
}

func TestXMLToJSONDecl(t *testing.T) {
	d, errs := decodeForTest(xmlToJSONKind(), xmlAttrs)
	if len(errs) > 0 {
		t.Fatalf("Decode = %v", errs)
	}
	if d.IO != engine.KeyInput|engine.KeyOutput || d.Input != engine.TypeString || d.Output != engine.TypeAny ||
		d.UserInputs || d.Async || len(d.Inputs) > 0 || len(d.Outputs) > 0 {
		t.Errorf("Decl = %+v, want input|output, string -> any", d)
	}
}

// runXML runs an xml_to_json node with attrs on doc.
func runXML(t *testing.T, attrs map[string]any, doc any) (string, error) {
	t.Helper()
	n := mustBuild(t, xmlToJSONKind(), attrs, selfInput, true)
	out, err := n.Run(context.Background(), testEnv(nil), []any{doc})
	if err != nil {
		return "", err
	}
	return jsonText(out[0]), nil
}

// xml138 is the document of spec §13.8, indented as §13.9 posts it.
const xml138 = `<root>
  <address>
    <city>Wonderland</city>
    <street>123 Main St</street>
  </address>
  <age>30</age>
  <courses>Math</courses>
  <courses>Science</courses>
  <is_student>false</is_student>
  <name>Alice</name>
  <null_value>null</null_value>
</root>
`

func TestXMLToJSON139(t *testing.T) {
	got, err := runXML(t, xmlAttrs, xml138)
	want := `{"root":{"address":{"city":"Wonderland","street":"123 Main St"},"age":30,"courses":["Math","Science"],"is_student":false,"name":"Alice","null_value":null}}`
	if err != nil || got != want {
		t.Errorf("Run(13.9) = %s, %v, want %s", got, err, want)
	}
}

func TestXMLToJSON(t *testing.T) {
	prefix := map[string]any{"attributes_name_prefix": "@"}
	tests := []struct {
		name  string
		attrs map[string]any
		doc   any
		want  string
	}{
		{"null", prefix, nil, `null`},
		{"text", prefix, `<a>hi</a>`, `{"a":"hi"}`},
		{"empty element", prefix, `<a/>`, `{"a":{}}`},
		{"whitespace only", prefix, "<a>  \n\t </a>", `{"a":{}}`},
		{"trimmed", prefix, "<a>  x y \n</a>", `{"a":"x y"}`},
		{"text_as_property", withAttrs(prefix, "text_as_property", true), `<a>hi</a>`, `{"a":{"#text":"hi"}}`},
		{"text_as_property empty", withAttrs(prefix, "text_as_property", true), `<a></a>`, `{"a":{}}`},
		{"text_as_property custom block", withAttrs(prefix, "text_as_property", true, "text_block_name", "_"),
			`<a>1</a>`, `{"a":{"_":1}}`},
		{"recognize types", prefix, `<r><i>-12</i><f>1.5e3</f><t>true</t><n>null</n><s>abc</s><big>1e400</big><lead> 7 </lead><hex>0x1</hex><plus>+1</plus></r>`,
			`{"r":{"big":"1e400","f":1500,"hex":"0x1","i":-12,"lead":7,"n":null,"plus":"+1","s":"abc","t":true}}`},
		{"recognize_type false", withAttrs(prefix, "recognize_type", false), `<r a="1"><i>12</i><t>true</t></r>`,
			`{"r":{"@a":"1","i":"12","t":"true"}}`},
		{"attributes prefixed", prefix, `<a id="7" name="x">t</a>`, `{"a":{"#text":"t","@id":7,"@name":"x"}}`},
		{"attributes in a block", map[string]any{"attributes_block_name": "attrs"}, `<a id="7"><b/></a>`,
			`{"a":{"attrs":{"id":7},"b":{}}}`},
		{"block and prefix", map[string]any{"attributes_block_name": "attrs", "attributes_name_prefix": "-"}, `<a id="x"/>`,
			`{"a":{"attrs":{"-id":"x"}}}`},
		{"attribute value kept", prefix, `<a v=" 5 "/>`, `{"a":{"@v":" 5 "}}`},
		{"child wins over attribute key", map[string]any{"attributes_block_name": "b"}, `<a id="1"><b>child</b></a>`,
			`{"a":{"b":"child"}}`},
		{"repeated children", prefix, `<l><i>1</i><x/><i>2</i><i>3</i></l>`, `{"l":{"i":[1,2,3],"x":{}}}`},
		{"mixed content", prefix, `<p>one <b>two</b> three</p>`, `{"p":{"#text":"one  three","b":"two"}}`},
		{"namespaces kept", prefix,
			`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:x"><soap:Body><m:r xmlns:m="urn:m">1</m:r></soap:Body></soap:Envelope>`,
			`{"soap:Envelope":{"@xmlns":"urn:x","@xmlns:soap":"http://schemas.xmlsoap.org/soap/envelope/","soap:Body":{"m:r":{"#text":1,"@xmlns:m":"urn:m"}}}}`},
		{"entities", prefix, `<a b="&quot;&#x41;">&lt;&amp;&gt;&apos;&#65;&#x1F600;</a>`, `{"a":{"#text":"<&>'A😀","@b":"\"A"}}`},
		{"cdata", prefix, `<a><![CDATA[<b>not markup</b>]]></a>`, `{"a":"<b>not markup</b>"}`},
		{"comments and PIs ignored", prefix, `<?xml version="1.0" encoding="UTF-8"?><!-- c --><a>x<!-- c -->y<?pi z?></a><!-- end -->`,
			`{"a":"xy"}`},
		{"DTD ignored", prefix, `<!DOCTYPE a [<!ELEMENT a (#PCDATA)>]><a>x</a>`, `{"a":"x"}`},
		{"xpath one", withAttrs(prefix, "xpath", "/r/b"), `<r><a>1</a><b>2</b></r>`, `{"b":2}`},
		{"xpath several", withAttrs(prefix, "xpath", "//i"), `<r><i>1</i><x><i k="v"/></x></r>`, `[{"i":1},{"i":{"@k":"v"}}]`},
		{"xpath none", withAttrs(prefix, "xpath", "//missing"), `<r/>`, `null`},
		{"xpath predicate", withAttrs(prefix, "xpath", "//book[@id='2']/title"),
			`<lib><book id="1"><title>A</title></book><book id="2"><title>B</title></book></lib>`, `{"title":"B"}`},
		{"xpath string value", withAttrs(prefix, "xpath", "//book[title='A']"),
			`<lib><book id="1"><title>A</title></book></lib>`, `{"book":{"@id":1,"title":"A"}}`},
		{"xpath prefix", withAttrs(prefix, "xpath", "//soap:Body/*"),
			`<soap:Envelope xmlns:soap="urn:s"><soap:Body><r>ok</r></soap:Body></soap:Envelope>`, `{"r":"ok"}`},
		{"xpath document", withAttrs(prefix, "xpath", "/"), `<r>1</r>`, `{"r":1}`},
		{"xpath attributes skipped", withAttrs(prefix, "xpath", "//@id | //b"), `<r id="1"><b/></r>`, `{"b":{}}`},
		{"xpath siblings", withAttrs(prefix, "xpath", "//b/following-sibling::*[1] | //b/preceding-sibling::*"),
			`<r><a/><b/><c/><d/></r>`, `[{"a":{}},{"c":{}}]`},
		{"xpath text nodes skipped", withAttrs(prefix, "xpath", "//a/text()"), `<r><a>t</a></r>`, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runXML(t, tt.attrs, tt.doc)
			if err != nil || got != tt.want {
				t.Errorf("Run(%q) = %s, %v, want %s", tt.doc, got, err, tt.want)
			}
		})
	}
}

func TestXMLToJSONErrors(t *testing.T) {
	prefix := map[string]any{"attributes_name_prefix": "@"}
	deep := func(n int) string { return strings.Repeat("<a>", n) + strings.Repeat("</a>", n) }
	tests := []struct {
		name  string
		attrs map[string]any
		doc   any
		want  string
	}{
		{"empty", prefix, "", "invalid XML: no root element"},
		{"whitespace", prefix, " \n", "invalid XML: no root element"},
		{"comment only", prefix, "<!-- x -->", "invalid XML: no root element"},
		{"not XML", prefix, "{\"a\":1}", "invalid XML: line 1: text outside the root element"},
		{"unclosed", prefix, "<a><b></b>", "invalid XML: unexpected EOF: element <a> not closed"},
		{"mismatched", prefix, "<a><b></a>", "invalid XML: line 1: unexpected end element </a>"},
		{"two roots", prefix, "<a/><b/>", "invalid XML: more than one root element"},
		{"bad syntax", prefix, "<a x=1/>", "invalid XML: XML syntax error on line 1: unquoted or missing attribute value in element"},
		{"unknown entity", prefix, "<a>&nbsp;</a>", "invalid XML: XML syntax error on line 1: invalid character entity &nbsp;"},
		{"billion laughs", prefix, `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>`, "invalid XML: XML syntax error on line 7: invalid character entity &lol3;"},
		{"external entity", prefix, `<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><a>&xxe;</a>`,
			"invalid XML: XML syntax error on line 1: invalid character entity &xxe;"},
		{"depth 257", prefix, deep(257), "invalid XML: nesting exceeds 256 levels"},
		{"100001 elements", prefix, "<r>" + strings.Repeat("<e/>", 100000) + "</r>", "invalid XML: more than 100000 elements"},
		{"deep before malformed", prefix, deep(100000)[:100000*3], "invalid XML: nesting exceeds 256 levels"},
		// Documents over 400 KB are pre-scanned: same errors, in the same order.
		{"1000000 elements", prefix, "<r>" + strings.Repeat("<e/>", 1000000) + "</r>", "invalid XML: more than 100000 elements"},
		{"large, deep before malformed", prefix, deep(200000)[:200000*3], "invalid XML: nesting exceeds 256 levels"},
		{"large, malformed before the limits", prefix, "<a x=1/>" + strings.Repeat("<e/>", 200000),
			"invalid XML: XML syntax error on line 1: unquoted or missing attribute value in element"},
		{"latin-1 declared", prefix, `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`,
			`invalid XML: xml: encoding "ISO-8859-1" declared but Decoder.CharsetReader is nil`},
		{"xpath number", withAttrs(prefix, "xpath", "count(//a)"), "<a/>", "xpath: expression must select elements, got number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runXML(t, tt.attrs, tt.doc)
			if errText(err) != tt.want {
				t.Errorf("Run(%.40q) = %s, %v, want error %q", tt.doc, got, err, tt.want)
			}
		})
	}
	// At the limits.
	if _, err := runXML(t, prefix, deep(256)); err != nil {
		t.Errorf("Run(256 levels) = %v, want no error", err)
	}
	if _, err := runXML(t, prefix, "<r>"+strings.Repeat("<e/>", 99999)+"</r>"); err != nil {
		t.Errorf("Run(100000 elements) = %v, want no error", err)
	}
}

// TestXMLPreScanBuildsNothing: a document over the element limit is refused
// by the pre-scan before any of its tree is built.
func TestXMLPreScanBuildsNothing(t *testing.T) {
	doc := "<r>" + strings.Repeat("<e/>", 1000000) + "</r>"
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := parseXML(doc); err != errXMLElements {
		t.Fatalf("parseXML = %v, want %v", err, errXMLElements)
	}
	runtime.ReadMemStats(&after)
	// The tokens of 100001 elements, without their 100001 tree nodes.
	t.Logf("ALLOCS %d", after.Mallocs-before.Mallocs)
	if got := after.Mallocs - before.Mallocs; got > 3*xmlMaxElements {
		t.Errorf("refusing the document took %d allocations", got)
	}
}

// The compiled xpath is shared by concurrent requests.
func TestXMLToJSONXPathConcurrent(t *testing.T) {
	n := mustBuild(t, xmlToJSONKind(), map[string]any{"attributes_name_prefix": "@", "xpath": "//i[. > 1]"}, selfInput, true)
	done := make(chan string)
	for g := 0; g < 8; g++ {
		go func() {
			var last string
			for i := 0; i < 50; i++ {
				out, err := n.Run(context.Background(), testEnv(nil), []any{"<r><i>1</i><i>2</i><i>3</i></r>"})
				if err != nil {
					last = err.Error()
					break
				}
				last = jsonText(out[0])
			}
			done <- last
		}()
	}
	for g := 0; g < 8; g++ {
		if got := <-done; got != `[{"i":2},{"i":3}]` {
			t.Errorf("concurrent Run = %s, want [{\"i\":2},{\"i\":3}]", got)
		}
	}
}

func FuzzXMLToJSON(f *testing.F) {
	for _, s := range []string{xml138, `<a b="1">t<c/><c>2</c></a>`, `<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>`,
		`<s:a xmlns:s="u"><![CDATA[x]]></s:a>`, "<a>", ""} {
		f.Add(s, false)
	}
	nodes := []engine.Node{
		mustBuildF(f, map[string]any{"attributes_name_prefix": "@"}),
		mustBuildF(f, map[string]any{"attributes_block_name": "attrs", "text_as_property": true, "recognize_type": false}),
	}
	xp := mustBuildF(f, map[string]any{"attributes_name_prefix": "@", "xpath": "//*[@id or text()]"})
	f.Fuzz(func(t *testing.T, doc string, withXPath bool) {
		n := nodes[len(doc)%2]
		if withXPath {
			n = xp
		}
		out, err := n.Run(context.Background(), testEnv(nil), []any{doc})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid XML: ") {
				t.Fatalf("Run(%q) = %v, want an invalid XML error", doc, err)
			}
			return
		}
		if _, err := engine.EncodeJSON(out[0]); err != nil {
			t.Fatalf("Run(%q) = %#v, not JSON: %v", doc, out[0], err)
		}
	})
}

func mustBuildF(f *testing.F, attrs map[string]any) engine.Node {
	d, errs := decodeForTest(xmlToJSONKind(), attrs)
	if len(errs) > 0 {
		f.Fatalf("Decode(%v) = %v", attrs, errs)
	}
	n, err := d.Build(&engine.BuildInfo{Name: "N", InputFields: selfInput, InputConnected: true})
	if err != nil {
		f.Fatal(err)
	}
	return n
}

func BenchmarkXMLToJSON(b *testing.B) {
	d, _ := decodeForTest(xmlToJSONKind(), xmlAttrs)
	n, _ := d.Build(&engine.BuildInfo{InputFields: selfInput})
	in := []any{xml138}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.Run(context.Background(), nil, in); err != nil {
			b.Fatal(err)
		}
	}
}
