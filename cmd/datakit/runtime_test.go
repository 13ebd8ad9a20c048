package main

import (
	"errors"
	"io/fs"
	"log/slog"
	"runtime/debug"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
		ok    bool
	}{
		{"v2 limit", map[string]string{"/sys/fs/cgroup/memory.max": "1073741824\n"}, 1 << 30, true},
		{"v2 max", map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}, 0, false},
		{"v1 limit", map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912\n"}, 1 << 29, true},
		{"v1 unlimited", map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false},
		{"no cgroup", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read := func(name string) ([]byte, error) {
				if s, ok := tc.files[name]; ok {
					return []byte(s), nil
				}
				return nil, fs.ErrNotExist
			}
			got, ok := cgroupMemoryLimit(read)
			if got != tc.want || ok != tc.ok {
				t.Errorf("cgroupMemoryLimit = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestTuneRuntime: the soft limit is 90 % of the cgroup's, GOGC and
// GOMEMLIMIT from the environment win.
func TestTuneRuntime(t *testing.T) {
	prevGC, prevLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(prevGC); debug.SetMemoryLimit(prevLimit) })
	read := func(name string) ([]byte, error) {
		if name == cgroupMemoryFiles[0] {
			return []byte("1000000000"), nil
		}
		return nil, errors.New("absent")
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	tuneRuntime(getenv, read, slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC percent without GOGC = %d, want %d", got, gcPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != 900000000 {
		t.Errorf("memory limit = %d, want 900000000", got)
	}

	debug.SetMemoryLimit(1 << 40)
	env["GOGC"], env["GOMEMLIMIT"] = "50", "2GiB"
	tuneRuntime(getenv, read, slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent with GOGC set = %d, want it left at 100", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Errorf("memory limit with GOMEMLIMIT set = %d, want it left alone", got)
	}
}
