package fault

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/mesh"
)

// NewKernel returns the real machine for mesh st: iptables-save/-restore
// (and their legacy twins) run inside the namespaces, sysctls written from inside them, rtnetlink,
// IPVS and conntrack netlink sockets opened inside them, the probe client
// for traffic and the agent's control channel. Every part refuses a
// namespace that is not the mesh's own.
func NewKernel(st *mesh.State) (*Kernel, error) {
	if st.Dir == "" {
		return nil, fmt.Errorf("mesh %s: no directory in the state", st.Name)
	}
	m := meshOnly{name: st.Name, dir: st.Dir}
	return &Kernel{Firewall: firewall{meshOnly: m}, Legacy: firewall{meshOnly: m, legacy: true}, Sysctls: sysctls{m},
		Links: links{m}, Routing: routing{m}, Overlay: overlay{m}, NIC: nic{m},
		LB: balancer{m}, Conntrack: conntrack{m}, Traffic: traffic{m}, Tasks: tasks{st}}, nil
}

// withHandle opens an rtnetlink (or other netlink family) handle inside
// the namespace; the socket keeps talking to it afterwards.
func withHandle(netns string, family int, fn func(*netlink.Handle) error) error {
	var h *netlink.Handle
	err := netnsx.Do(netns, func() error {
		var err error
		h, err = netlink.NewHandle(family)
		return err
	})
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", netns, err)
	}
	defer h.Close()
	return fn(h)
}

// withLink opens rtnetlink inside the namespace and finds the link name.
func withLink(netns, name string, fn func(*netlink.Handle, netlink.Link) error) error {
	return withHandle(netns, unix.NETLINK_ROUTE, func(h *netlink.Handle) error {
		link, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
		return fn(h, link)
	})
}

// lockFaults takes the mesh's fault lock (one break or repair at a time).
func lockFaults(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "faults.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
