package config

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestFieldErrorsShape(t *testing.T) {
	e := &FieldErrors{}
	e.Field("path").Add("should start with: /")
	e.Field("host").Add("required field missing")
	e.AddEntity("at least one of these fields must be non-empty: 'custom_id', 'username'")
	e.Field("paths").Index(1).Add("bad")
	e.Field("paths").Index(9).Add("bad too")
	e.Field("config").AddList("nodes[1]: x")
	b, _ := json.Marshal(e)
	want := `{"@entity":["at least one of these fields must be non-empty: 'custom_id', 'username'"],"config":["nodes[1]: x"],"host":"required field missing","path":"should start with: /","paths":{"10":"bad too","2":"bad"}}`
	if string(b) != want {
		t.Errorf("json = %s\nwant   %s", b, want)
	}
	wantMsg := "6 schema violations (at least one of these fields must be non-empty: 'custom_id', 'username'; config: nodes[1]: x; host: required field missing; path: should start with: /; paths.2: bad; paths.10: bad too)"
	if got := e.Error(); got != wantMsg {
		t.Errorf("Error() = %s\nwant      %s", got, wantMsg)
	}
	one := &FieldErrors{}
	if one.Err() != nil {
		t.Errorf("empty Err() != nil")
	}
	one.Field("host").Add("required field missing")
	if got := one.Error(); got != "schema violation (host: required field missing)" {
		t.Errorf("Error() = %s", got)
	}
	if b, _ := (*FieldErrors)(nil).MarshalJSON(); string(b) != "{}" {
		t.Errorf("nil tree = %s", b)
	}
}

// TestPluginConfigErrors pins how ValidatePluginConfig's errors are placed.
func TestPluginConfigErrors(t *testing.T) {
	tree := &FieldErrors{}
	tree.Field("key_names").Index(0).Add("bad")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"tree", tree, `{"config":{"key_names":{"1":"bad"}}}`},
		{"joined", errors.Join(errors.New("a: x"), errors.New("b: y")), `{"config":["a: x","b: y"]}`},
		{"joined one", errors.Join(errors.New("a: x")), `{"config":["a: x"]}`},
		{"plain", errors.New("boom"), `{"config":"boom"}`},
	}
	for _, tc := range tests {
		e := &FieldErrors{}
		addConfigError(e.Field("config"), tc.err)
		if b, _ := json.Marshal(e); string(b) != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, b, tc.want)
		}
	}
}
