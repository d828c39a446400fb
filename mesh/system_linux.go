package mesh

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// linuxSystem is the real System: one rtnetlink handle (and one raw
// rtnetlink socket) per namespace, opened on first use and kept for the
// life of the System (Close releases them). Both are safe for concurrent
// use.
type linuxSystem struct {
	mu      sync.Mutex
	handles map[string]*nsHandle
	// index caches link indexes by "path\x00name" (bridges only: they
	// never move).
	index map[string]int
}

type nsHandle struct {
	fd   netns.NsHandle
	h    *netlink.Handle
	sock *nl.SocketHandle // rtnetlink socket for hand-made requests
}

var _ System = (*linuxSystem)(nil)

// NewSystem returns the real kernel. Close it when done.
func NewSystem() System {
	return &linuxSystem{handles: map[string]*nsHandle{}, index: map[string]int{}}
}

// Close releases every namespace handle.
func (s *linuxSystem) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, nh := range s.handles {
		nh.h.Close()
		nh.sock.Close()
		nh.fd.Close()
		delete(s.handles, p)
	}
	return nil
}

// handle returns the rtnetlink handle and namespace fd of the namespace at
// path. It never falls back to the caller's namespace: a path that cannot
// be opened is an error.
func (s *linuxSystem) handle(path string) (*nsHandle, error) {
	if path == "" {
		return nil, errors.New("empty netns path")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if nh, ok := s.handles[path]; ok {
		return nh, nil
	}
	fd, err := netnsx.Open(path)
	if err != nil {
		return nil, err
	}
	// Sockets belong to the namespace they are created in: make the
	// handle's and our own (for hand-made requests) inside it, with
	// netnsx doing the switching (what netlink.NewHandleAt would do).
	var (
		h    *netlink.Handle
		sock *nl.NetlinkSocket
	)
	err = netnsx.Do(path, func() error {
		var err error
		if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			return fmt.Errorf("netlink handle: %w", err)
		}
		if sock, err = nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE); err != nil {
			h.Close()
			return fmt.Errorf("netlink socket: %w", err)
		}
		return nil
	})
	if err != nil {
		fd.Close()
		return nil, fmt.Errorf("netns %s: %w", path, err)
	}
	nh := &nsHandle{fd: fd, h: h, sock: &nl.SocketHandle{Socket: sock}}
	s.handles[path] = nh
	return nh, nil
}

// HasIPVS is internal/kmod's IPVS check. Building a mesh writes to the
// kernel and programs IPVS, so it may load ip_vs as its lookup does
// (kmod.Allow, what --allow-module-load gives the readers). Generic
// netlink families are global to the kernel, so asking from the caller's
// namespace changes nothing else.
func (s *linuxSystem) HasIPVS() (bool, string) {
	if ok, reason := kmod.HostIPVS(kmod.Allow{}); !ok {
		return false, reason
	}
	return true, "generic netlink family IPVS present"
}

func (s *linuxSystem) CreateNetns(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return netnsx.Create(path)
}

func (s *linuxSystem) Devices(ns *NetnsSpec) error {
	nh, err := s.handle(ns.Path)
	if err != nil {
		return err
	}
	h := nh.h
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("link lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("link lo up: %w", err)
	}
	for _, b := range ns.Bridges {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: b.Name, MTU: b.MTU, Flags: net.FlagUp}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("bridge %s: %w", b.Name, err)
		}
		s.remember(ns.Path, b.Name, br.Index)
	}
	if ns.VXLAN != nil {
		return s.vxlan(nh, ns.Path, ns.VXLAN)
	}
	return nil
}

// vxlan creates the VTEP in its CreateIn namespace (its UDP socket, opened
// when it goes up, stays there on the underlay), moves it into the overlay
// namespace, renames it and enslaves it to the overlay bridge.
func (s *linuxSystem) vxlan(nh *nsHandle, path string, v *VXLANSpec) error {
	hn, err := s.handle(v.CreateIn)
	if err != nil {
		return err
	}
	vx := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: v.TmpName, MTU: v.MTU},
		VxlanId:   v.VNI, Port: v.Port, Learning: v.Learning, Proxy: v.Proxy,
		L2miss: v.L2Miss, L3miss: v.L3Miss,
	}
	if err := hn.h.LinkAdd(vx); err != nil {
		return fmt.Errorf("vxlan %s in %s: %w", v.TmpName, v.CreateIn, err)
	}
	if err := hn.h.LinkSetNsFd(vx, int(nh.fd)); err != nil {
		return fmt.Errorf("vxlan %s: move to %s: %w", v.TmpName, path, err)
	}
	l, err := nh.h.LinkByName(v.TmpName)
	if err != nil {
		return fmt.Errorf("vxlan %s after move: %w", v.TmpName, err)
	}
	if err := nh.h.LinkSetName(l, v.Name); err != nil {
		return fmt.Errorf("vxlan %s: rename to %s: %w", v.TmpName, v.Name, err)
	}
	if err := s.enslave(nh, path, l, v.Master); err != nil {
		return fmt.Errorf("vxlan %s: %w", v.Name, err)
	}
	if err := nh.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("vxlan %s up: %w", v.Name, err)
	}
	return nil
}

func (s *linuxSystem) remember(path, name string, index int) {
	s.mu.Lock()
	s.index[path+"\x00"+name] = index
	s.mu.Unlock()
}

// bridgeIndex returns the ifindex of the bridge name in the namespace at
// path (cached: bridges never move).
func (s *linuxSystem) bridgeIndex(nh *nsHandle, path, name string) (int, error) {
	s.mu.Lock()
	idx := s.index[path+"\x00"+name]
	s.mu.Unlock()
	if idx != 0 {
		return idx, nil
	}
	br, err := nh.h.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("bridge %s: %w", name, err)
	}
	idx = br.Attrs().Index
	s.remember(path, name, idx)
	return idx, nil
}

// enslave makes l a port of the bridge master in the namespace at path.
func (s *linuxSystem) enslave(nh *nsHandle, path string, l netlink.Link, master string) error {
	if master == "" {
		return nil
	}
	idx, err := s.bridgeIndex(nh, path, master)
	if err != nil {
		return err
	}
	if err := nh.h.LinkSetMasterByIndex(l, idx); err != nil {
		return fmt.Errorf("set master %s: %w", master, err)
	}
	return nil
}

func (s *linuxSystem) Configure(ns *NetnsSpec) error {
	nh, err := s.handle(ns.Path)
	if err != nil {
		return err
	}
	h := nh.h
	links := map[string]netlink.Link{}
	link := func(name string) (netlink.Link, error) {
		if l, ok := links[name]; ok {
			return l, nil
		}
		l, err := h.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("link %s: %w", name, err)
		}
		links[name] = l
		return l, nil
	}
	for _, v := range ns.Veths {
		l, err := link(v.Name)
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("link %s up: %w", v.Name, err)
		}
	}
	for _, a := range ns.Addrs {
		l, err := link(a.Dev)
		if err != nil {
			return err
		}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(a.Prefix)}); err != nil {
			return fmt.Errorf("address %s on %s: %w", a.Prefix, a.Dev, err)
		}
	}
	for _, r := range ns.Routes {
		l, err := link(r.Dev)
		if err != nil {
			return err
		}
		if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: r.Gateway.AsSlice()}); err != nil {
			return fmt.Errorf("default route via %s dev %s: %w", r.Gateway, r.Dev, err)
		}
	}
	for _, n := range ns.Neighs {
		l, err := link(n.Dev)
		if err != nil {
			return err
		}
		mac, err := net.ParseMAC(n.MAC)
		if err != nil {
			return fmt.Errorf("neighbour %s: %w", n.IP, err)
		}
		err = h.NeighAdd(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_INET,
			State: netlink.NUD_PERMANENT, IP: n.IP.AsSlice(), HardwareAddr: mac})
		if err != nil {
			return fmt.Errorf("neighbour %s lladdr %s dev %s: %w", n.IP, n.MAC, n.Dev, err)
		}
	}
	for _, f := range ns.FDB {
		l, err := link(f.Dev)
		if err != nil {
			return err
		}
		mac, err := net.ParseMAC(f.MAC)
		if err != nil {
			return fmt.Errorf("fdb %s: %w", f.MAC, err)
		}
		err = h.NeighAppend(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_BRIDGE,
			Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT, IP: f.Dst.AsSlice(), HardwareAddr: mac})
		if err != nil {
			return fmt.Errorf("fdb %s dev %s dst %s: %w", f.MAC, f.Dev, f.Dst, err)
		}
	}
	if len(ns.Sysctls) > 0 {
		return writeSysctls(ns.Path, ns.Sysctls)
	}
	return nil
}

// writeSysctls writes /proc/sys keys from inside the namespace: the
// net.* sysctls a thread sees are those of its own namespace.
func writeSysctls(path string, sysctls []Sysctl) error {
	return netnsx.Do(path, func() error {
		for _, sc := range sysctls {
			f := filepath.Join("/proc/sys", sc.Key)
			if err := os.WriteFile(f, []byte(sc.Value), 0); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", sc.Key, sc.Value, err)
			}
		}
		return nil
	})
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// needLinux: this is Linux.
func needLinux() error { return nil }
