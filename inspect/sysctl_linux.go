package inspect

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
)

// kernelSysctls reads /proc/sys/net from inside the target namespace (the
// per-link net.ipv4.conf.LINK knobs come with the link dump instead, see
// devconfKnobs):
// /proc/sys/net shows the namespace of the thread that opens the file, so
// every file is opened within the namespace (Target.inside).
//
// Cost matters here more than anywhere: every namespace has its own
// dentries for /proc/sys/net/ipv4, netfilter and bridge, all hashed under
// the same (parent, name), so opening one walks a hash chain as long as
// the number of namespaces on the node. The net directory comes from
// roots (netnsx.SysctlRoots: private procfs instances, whose chains stay
// short), and the ipv4, vs, netfilter and bridge directories are opened
// once each, the files relative to them (openat).
type kernelSysctls struct {
	roots *netnsx.SysctlRoots // nil: /proc/sys/net
}

var _ SysctlReader = kernelSysctls{}

const netDir = "/proc/sys/net"

// release lets the reader's procfs instances go (Live calls it when done).
func (k kernelSysctls) release() { k.roots.Close() }

func (k kernelSysctls) ReadSysctls(t *Target) (topology.Sysctls, error) {
	out := topology.Sysctls{}
	var errs []error
	buf := make([]byte, 512)
	read := func(dirfd int, key, rel string) {
		v, err := readAt(dirfd, rel, buf)
		switch {
		case err == nil:
			out[key] = v
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	err := t.inside(func() error {
		net, done, err := k.roots.OpenNet()
		if err != nil {
			return err
		}
		defer done()
		defer unix.Close(net)
		opened := map[string]int{}
		defer func() {
			for _, fd := range opened {
				unix.Close(fd)
			}
		}()
		for _, d := range sysctlDirs {
			// A subdirectory of one already open is opened from there.
			base, rel := net, d.dir
			if parent, child, ok := strings.Cut(d.dir, "/"); ok && opened[parent] > 0 {
				base, rel = opened[parent], child
			}
			fd, err := unix.Openat(base, rel, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s/%s: %w", netDir, d.dir, err))
				continue
			}
			opened[d.dir] = fd
			for _, f := range d.files {
				read(fd, d.prefix+strings.ReplaceAll(f, "/", "."), f)
			}
		}
		t.hints.conntrack = conntrackHint(out)
		t.hints.sockets = socketsInUse(buf)
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// readAt reads a small file relative to dirfd (-100, AT_FDCWD, for an
// absolute path) with three system calls; the value is trimmed.
func readAt(dirfd int, path string, buf []byte) (string, error) {
	fd, err := unix.Openat(dirfd, path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err != nil {
			return "", err
		}
		if m == 0 {
			break
		}
		n += m
	}
	if n == len(buf) {
		return "", fmt.Errorf("%s: longer than %d bytes", path, len(buf))
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// socketsInUse sums the TCP and UDP (v4 and v6) sockets of the current
// thread's namespace from /proc/thread-self/net/sockstat{,6}; -1 when
// they cannot be read.
func socketsInUse(buf []byte) int {
	total := 0
	for _, f := range []string{"/proc/thread-self/net/sockstat", "/proc/thread-self/net/sockstat6"} {
		b, err := readAt(unix.AT_FDCWD, f, buf)
		if err != nil {
			return -1
		}
		for _, line := range strings.Split(b, "\n") {
			fs := strings.Fields(line)
			if len(fs) < 3 || fs[1] != "inuse" {
				continue
			}
			switch fs[0] {
			case "TCP:", "UDP:", "TCP6:", "UDP6:":
				n, err := strconv.Atoi(fs[2])
				if err != nil {
					return -1
				}
				total += n
			}
		}
	}
	return total
}
