package proc

import (
	"os"
	"runtime/debug"
	"syscall"
	"time"
)

// usage is a process's peak resident set (bytes) and CPU time, from wait4's
// rusage.
func usage(st *os.ProcessState) (maxRSS int64, cpu time.Duration) {
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss << 10, time.Duration(ru.Utime.Nano() + ru.Stime.Nano()) // ru_maxrss is in KiB on Linux
	}
	return 0, st.UserTime() + st.SystemTime()
}

// resetPeak lowers this process's peak resident set to what it holds now,
// having given the heap it does not use back to the kernel, before it
// starts a command: Go starts commands with vfork semantics (CLONE_VM),
// and exec records the parent's peak as the child's first (ru_maxrss,
// setmax_mm_hiwater_rss in fs/exec.c), so a command started after the
// bench built a big input in memory would report the bench's peak as its
// own. Writing 5 to clear_refs resets the peak (proc(5), Linux 4.0).
func resetPeak() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
