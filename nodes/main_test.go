package nodes

import (
	"testing"

	"go.uber.org/goleak"
)

// Call nodes start connection goroutines: every test must leave none behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
