package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// gcPercent is the garbage collector's target when GOGC is unset. The
// gateway's live heap is small and its garbage is per request, so a larger
// target trades a few MiB for less collection work per request.
const gcPercent = 400

// cgroupMemoryFiles hold the container's memory limit: cgroup v2, then v1.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// tuneRuntime applies the process's memory settings (hardening.md §2.11):
// without GOMEMLIMIT, a soft limit of 90 % of the cgroup's memory limit when
// there is one; without GOGC, gcPercent. Explicit environment settings win.
func tuneRuntime(getenv func(string) string, readFile func(string) ([]byte, error), logger *slog.Logger) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if getenv("GOMEMLIMIT") != "" {
		return
	}
	if limit, ok := cgroupMemoryLimit(readFile); ok {
		soft := limit / 10 * 9
		debug.SetMemoryLimit(soft)
		logger.Info("memory limit set from the cgroup", "cgroup_bytes", limit, "soft_limit_bytes", soft)
	}
}

// cgroupMemoryLimit reads the first cgroup memory limit that is set. "max"
// (v2) and v1's page-rounded "unlimited" (about 2^63) mean no limit.
func cgroupMemoryLimit(readFile func(string) ([]byte, error)) (int64, bool) {
	for _, f := range cgroupMemoryFiles {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// tuneProcess is tuneRuntime for this process.
func tuneProcess(logger *slog.Logger) { tuneRuntime(os.Getenv, os.ReadFile, logger) }
