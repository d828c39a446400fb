//go:build unix

package safefile

import (
	"io/fs"
	"os"
	"syscall"
)

// A FIFO opened for reading blocks until a writer comes: files are opened
// non-blocking (which regular files ignore). O_NOCTTY keeps a terminal
// from becoming ours; O_NOFOLLOW never writes through a link.
const (
	oNonblock = syscall.O_NONBLOCK
	oNoctty   = syscall.O_NOCTTY
	oNofollow = syscall.O_NOFOLLOW
)

// owner returns the uid owning a file, and whether it is known.
func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

func euid() int { return os.Geteuid() }
