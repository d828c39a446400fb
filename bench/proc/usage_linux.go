package proc

import (
	"os"
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
