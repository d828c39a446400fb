package dockerns

import (
	"fmt"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// netnsFile is one namespace of the world: a bind mount of an nsfs file,
// an open handle on it (for moving links into it) and a netlink handle
// whose sockets live in it.
type netnsFile struct {
	name string
	path string
	fd   netns.NsHandle
	h    *netlink.Handle
}

// newNetns creates a network namespace pinned at path (netnsx.Create, like
// `ip netns add`) and opens the handles the builder uses on it.
func newNetns(name, path string) (*netnsFile, error) {
	if err := netnsx.Create(path); err != nil {
		return nil, fmt.Errorf("netns %s: %w", name, err)
	}
	n := &netnsFile{name: name, path: path, fd: -1}
	var err error
	if n.fd, err = netnsx.Open(path); err != nil {
		n.remove()
		return nil, fmt.Errorf("netns %s: %w", name, err)
	}
	if err := netnsx.Do(path, func() error {
		var e error
		n.h, e = netlink.NewHandle(unix.NETLINK_ROUTE)
		return e
	}); err != nil {
		n.remove()
		return nil, fmt.Errorf("netns %s: netlink handle: %w", name, err)
	}
	lo, err := n.h.LinkByName("lo")
	if err == nil {
		err = n.h.LinkSetUp(lo)
	}
	if err != nil {
		n.remove()
		return nil, fmt.Errorf("netns %s: lo up: %w", name, err)
	}
	return n, nil
}

// remove closes the handles and unpins the namespace; the kernel then
// frees it with every link in it (a veth dies with either end). Safe to
// call twice.
func (n *netnsFile) remove() error {
	if n.h != nil {
		n.h.Close()
		n.h = nil
	}
	if n.fd >= 0 {
		n.fd.Close()
		n.fd = -1
	}
	if err := netnsx.Destroy(n.path); err != nil {
		return fmt.Errorf("netns %s: %w", n.name, err)
	}
	return nil
}

// Leftovers lists mounts under base that are still in place; a torn-down
// world has none. Tests use it to prove nothing is left behind.
func Leftovers(base string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == base || strings.HasPrefix(f[4], base+"/")) {
			out = append(out, f[4])
		}
	}
	if _, err := os.Stat(base); err == nil {
		out = append(out, base)
	}
	return out, nil
}

// sysctl writes a /proc/sys/net knob inside the namespace.
func (n *netnsFile) sysctl(key, val string) error {
	p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return netnsx.Do(n.path, func() error {
		if err := os.WriteFile(p, []byte(val), 0o644); err != nil {
			return fmt.Errorf("netns %s: sysctl %s: %w", n.name, key, err)
		}
		return nil
	})
}
