package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves goroutines behind: the tests
// run whole nodes, fault proxies and clients in this process.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
