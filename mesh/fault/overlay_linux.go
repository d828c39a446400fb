package fault

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/mesh"
)

// overlay reads and writes a VXLAN device's FDB over rtnetlink inside the
// namespace.
type overlay struct{ meshOnly }

var _ Overlay = overlay{}

func (k overlay) FDB(netns, dev string) ([]mesh.FDBSpec, error) {
	if err := k.mine(netns); err != nil {
		return nil, err
	}
	var out []mesh.FDBSpec
	err := withLink(netns, dev, func(h *netlink.Handle, link netlink.Link) error {
		ns, err := h.NeighList(link.Attrs().Index, unix.AF_BRIDGE)
		if err != nil {
			return fmt.Errorf("fdb dev %s: %w", dev, err)
		}
		for _, n := range ns {
			dst, ok := netipAddr(n.IP)
			if !ok || n.HardwareAddr == nil || n.Flags&netlink.NTF_SELF == 0 {
				continue
			}
			out = append(out, mesh.FDBSpec{Dev: dev, MAC: n.HardwareAddr.String(), Dst: dst})
		}
		return nil
	})
	return out, err
}

func (k overlay) SetFDB(netns string, op FDBOp) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return withLink(netns, op.Dev, func(h *netlink.Handle, link netlink.Link) error {
		mac, err := net.ParseMAC(op.MAC)
		if err != nil {
			return fmt.Errorf("fdb %s: %w", op.MAC, err)
		}
		n := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
			State: netlink.NUD_PERMANENT, IP: op.Dst.AsSlice(), HardwareAddr: mac}
		if op.Delete {
			err = h.NeighDel(n)
		} else {
			err = h.NeighAppend(n)
		}
		if err != nil {
			return fmt.Errorf("fdb %s dev %s dst %s: %w", op.MAC, op.Dev, op.Dst, err)
		}
		return nil
	})
}

func (k overlay) Neigh(netns, dev string, ip netip.Addr) (string, error) {
	if err := k.mine(netns); err != nil {
		return "", err
	}
	mac := ""
	err := withLink(netns, dev, func(h *netlink.Handle, link netlink.Link) error {
		ns, err := h.NeighList(link.Attrs().Index, unix.AF_INET)
		if err != nil {
			return fmt.Errorf("neighbours of %s: %w", dev, err)
		}
		for _, n := range ns {
			if a, ok := netipAddr(n.IP); ok && a == ip && n.State&netlink.NUD_PERMANENT != 0 {
				mac = n.HardwareAddr.String()
			}
		}
		return nil
	})
	return mac, err
}

func (k overlay) SetNeigh(netns string, op NeighOp) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return withLink(netns, op.Dev, func(h *netlink.Handle, link netlink.Link) error {
		n := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: unix.AF_INET, IP: op.IP.AsSlice()}
		if op.Forget {
			ns, err := h.NeighList(link.Attrs().Index, unix.AF_INET)
			if err != nil {
				return fmt.Errorf("neighbours of %s: %w", op.Dev, err)
			}
			for _, e := range ns {
				if a, ok := netipAddr(e.IP); ok && a == op.IP && e.State&(netlink.NUD_PERMANENT|netlink.NUD_NOARP) == 0 {
					if err := h.NeighDel(n); err != nil && !errors.Is(err, unix.ENOENT) {
						return fmt.Errorf("neigh del %s dev %s: %w", op.IP, op.Dev, err)
					}
				}
			}
			return nil
		}
		mac, err := net.ParseMAC(op.MAC)
		if err != nil {
			return fmt.Errorf("neighbour %s: %w", op.IP, err)
		}
		n.State, n.HardwareAddr = netlink.NUD_PERMANENT, mac
		if err := h.NeighSet(n); err != nil {
			return fmt.Errorf("neigh replace %s lladdr %s dev %s: %w", op.IP, op.MAC, op.Dev, err)
		}
		return nil
	})
}

// netipAddr converts a netlink address; nil and 0.0.0.0 are not one.
func netipAddr(ip net.IP) (netip.Addr, bool) {
	if ip == nil || ip.IsUnspecified() {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}
