package engine

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the engine free of HTTP servers, jq and the rest of the
// repository (design §2).
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case pkg == "net/http", strings.HasPrefix(pkg, "net/http/"),
			strings.Contains(pkg, "gojq"),
			strings.HasPrefix(pkg, "github.com/datakit-gateway/datakit/") && pkg != "github.com/datakit-gateway/datakit/engine":
			t.Errorf("engine depends on %s", pkg)
		}
	}
}
