package conformance

import (
	"syscall"
	"testing"
)

type syscallStat = syscall.Stat_t

// allocatedBytes is how much of a sparse file is really allocated.
func allocatedBytes(t *testing.T, path string, st *syscall.Stat_t) int64 {
	t.Helper()
	if err := syscall.Stat(path, st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}
