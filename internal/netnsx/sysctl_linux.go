package netnsx

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// SysctlRoots hands out /proc/sys/net directories for reads inside many
// namespaces, each showing the namespace of the thread that looks a name
// up in it (as /proc/sys/net does).
//
// Why not /proc/sys/net itself: every namespace has its own dentries for
// /proc/sys/net/ipv4, netfilter, bridge and the like, and in one procfs
// they all hang under the one shared net dentry with the same name, so
// they share a dcache hash chain. A lookup walks that chain and calls
// proc_sys_compare (fs/proc/proc_sysctl.c, which asks sysctl_is_seen for
// each) on every other namespace's dentry before it finds its own: on a
// node of 2,000 namespaces one open of /proc/sys/net/ipv4 took 150 µs
// against 17 µs at 200, and the reads of a live inspect of 2,000 spent
// half their CPU there (perf: proc_sys_compare and
// __d_lookup_rcu_op_compare). The chains are the kernel's and stay as
// long as the namespaces live.
//
// So the lookups go through private procfs instances instead (fsopen,
// fsconfig, fsmount: a new superblock with its own dentries, never
// attached anywhere, gone when its descriptor is closed), each used for
// at most Reuse reads, so no chain is longer than Reuse. Where procfs
// cannot be mounted (no CAP_SYS_ADMIN, a seccomp filter, a kernel before
// 5.2) the reads go through /proc/sys/net. Closing an instance waits for
// an RCU grace period (milliseconds on a loaded machine): it is done in
// the background.
type SysctlRoots struct {
	// Reuse is how many reads one instance serves (0: 64).
	Reuse int

	mu       sync.Mutex
	free     []*procInstance
	disabled bool
	closed   bool
}

type procInstance struct {
	fd   int
	uses int
}

// sysctlNet is where the reads go without an instance.
const sysctlNet = "/proc/sys/net"

// OpenNet opens (O_PATH) the sys/net directory of a procfs, a private
// instance when it can; the caller reads below it from inside the
// namespace it wants, closes the descriptor and then calls done. A nil
// *SysctlRoots opens /proc/sys/net.
func (s *SysctlRoots) OpenNet() (fd int, done func(), err error) {
	in := s.get()
	if in != nil {
		fd, err := unix.Openat(in.fd, "sys/net", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			return fd, func() { s.put(in) }, nil
		}
		// An instance that cannot show sys/net: use /proc from now on.
		s.mu.Lock()
		s.disabled = true
		s.mu.Unlock()
		s.put(in)
	}
	fd, err = unix.Open(sysctlNet, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("%s: %w", sysctlNet, err)
	}
	return fd, func() {}, nil
}

// Private reports whether reads go through private instances (false
// once making one failed).
func (s *SysctlRoots) Private() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.disabled
}

func (s *SysctlRoots) get() *procInstance {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.disabled || s.closed {
		s.mu.Unlock()
		return nil
	}
	if n := len(s.free); n > 0 {
		in := s.free[n-1]
		s.free = s.free[:n-1]
		s.mu.Unlock()
		return in
	}
	s.mu.Unlock()
	fd, err := mountProc()
	if err != nil {
		s.mu.Lock()
		s.disabled = true
		s.mu.Unlock()
		return nil
	}
	return &procInstance{fd: fd}
}

func (s *SysctlRoots) put(in *procInstance) {
	in.uses++
	reuse := s.Reuse
	if reuse <= 0 {
		reuse = 64
	}
	s.mu.Lock()
	if in.uses < reuse && !s.closed && !s.disabled {
		s.free = append(s.free, in)
		in = nil
	}
	s.mu.Unlock()
	if in != nil {
		go unix.Close(in.fd)
	}
}

// Close lets every instance go (in the background); later reads go
// through /proc/sys/net.
func (s *SysctlRoots) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	free := s.free
	s.free, s.closed = nil, true
	s.mu.Unlock()
	if len(free) > 0 {
		go func() {
			for _, in := range free {
				unix.Close(in.fd)
			}
		}()
	}
}

// mountProc makes a detached, read-only procfs instance and returns the
// descriptor of its root.
func mountProc() (int, error) {
	fs, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fs)
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, err
	}
	fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC,
		unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, err
	}
	return fd, nil
}
