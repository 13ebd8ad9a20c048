package demo

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServicesAndConfig(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Post(s.Token+"/auth-token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok["token_type"] != "Bearer" || tok["access_token"] == "" {
		t.Errorf("token service answered %v", tok)
	}
	resp, err = http.Get(s.Upstream + "/anything?x=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"url": "/anything?x=1"`) {
		t.Errorf("echo upstream answered %s", b)
	}
	cfg := string(s.Config())
	if strings.Contains(cfg, "{{") || !strings.Contains(cfg, s.Token+"/auth-token") {
		t.Errorf("Config() left placeholders or lacks the token address:\n%s", cfg)
	}
}
