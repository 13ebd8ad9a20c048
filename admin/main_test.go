package admin_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves goroutines behind: the
// hardening cases start clients, servers and proxies.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
