package netnsx_test

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
)

// TestSysctlRoots: a read through SysctlRoots shows the sysctls of the
// namespace the reading thread is in, the same as /proc/sys/net there,
// through instances reused and replaced, and through /proc where there
// are none (nil roots).
func TestSysctlRoots(t *testing.T) {
	testutil.NeedRoot(t)
	// Three namespaces told apart by ip_forward and rp_filter, set inside
	// them (never the root namespace's).
	var paths []string
	want := []string{"0 2", "1 1", "1 0"}
	for _, w := range want {
		p := testutil.Netns(t)
		paths = append(paths, p)
		fwd, rpf, _ := strings.Cut(w, " ")
		err := netnsx.Do(p, func() error {
			if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte(fwd), 0); err != nil {
				return err
			}
			return os.WriteFile("/proc/sys/net/ipv4/conf/all/rp_filter", []byte(rpf), 0)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	read := func(roots *netnsx.SysctlRoots, path string) string {
		t.Helper()
		var got string
		err := netnsx.Do(path, func() error {
			net, done, err := roots.OpenNet()
			if err != nil {
				return err
			}
			defer done()
			defer unix.Close(net)
			var vals []string
			for _, f := range []string{"ipv4/ip_forward", "ipv4/conf/all/rp_filter"} {
				fd, err := unix.Openat(net, f, unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					return err
				}
				b := make([]byte, 64)
				n, err := unix.Read(fd, b)
				unix.Close(fd)
				if err != nil {
					return err
				}
				vals = append(vals, strings.TrimSpace(string(b[:n])))
			}
			got = strings.Join(vals, " ")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	roots := &netnsx.SysctlRoots{Reuse: 2}
	t.Cleanup(roots.Close)
	for round := range 3 { // 9 reads: instances replaced after 2
		for i, p := range paths {
			if got := read(roots, p); got != want[i] {
				t.Errorf("round %d, netns %d: read %q, want %q", round, i, got, want[i])
			}
			if got := read(nil, p); got != want[i] {
				t.Errorf("round %d, netns %d through /proc: read %q, want %q", round, i, got, want[i])
			}
		}
	}
	// Where this process can mount procfs, the reads above went through
	// private instances.
	if fs, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC); err == nil {
		unix.Close(fs)
		if !roots.Private() {
			t.Errorf("procfs can be mounted here, but the reads went through /proc")
		}
	}
	roots.Close()
	if got := read(roots, paths[1]); got != want[1] {
		t.Errorf("after Close: read %q, want %q", got, want[1])
	}
}
