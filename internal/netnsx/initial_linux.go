package netnsx

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// initialFD holds the network namespace the process started in, opened in
// package initialisation: Go runs it on the main thread before main, and
// before any goroutine can have entered another namespace.
//
// Why it is needed: /proc/self/ns/net, and /proc/1/ns/net where meshtrace
// is PID 1 (the swarm collect job's container, `docker run` without
// --pid host), name the namespace of the process's main thread at the
// moment they are opened. After main starts, the main thread runs any
// goroutine, including one locked inside Do: opened then, they are some
// task's or sandbox's namespace, and a "host" read through them reads
// that one (the Docker 28 VM lane saw a worker's host iptables-save hold
// a task's rules, now and then).
var initialFD = openInitial()

func openInitial() int {
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// InitialPath is a path that opens the network namespace the process
// started in, whichever thread opens it, while the process lives ("" if
// it could not be opened at start).
func InitialPath() string {
	if initialFD < 0 {
		return ""
	}
	return "/proc/self/fd/" + strconv.Itoa(initialFD)
}
