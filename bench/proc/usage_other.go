//go:build !linux

package proc

import (
	"os"
	"time"
)

// usage off Linux: CPU time only (the benchmarks run on Linux; the
// package builds elsewhere for the tests that share bench/bundles).
func usage(st *os.ProcessState) (maxRSS int64, cpu time.Duration) {
	return 0, st.UserTime() + st.SystemTime()
}

// resetPeak: nothing to reset off Linux (no peak is measured).
func resetPeak() {}
