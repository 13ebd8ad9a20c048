package datakit_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Plans start goroutines for their calls and cache operations: every test
// must leave none behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
