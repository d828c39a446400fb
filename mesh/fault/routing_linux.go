package fault

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routing talks rtnetlink inside the namespace: addresses and the main
// table's routes.
type routing struct{ meshOnly }

var _ Routing = routing{}

func (k routing) Addrs(netns, dev string) ([]netip.Prefix, error) {
	if err := k.mine(netns); err != nil {
		return nil, err
	}
	var out []netip.Prefix
	err := withLink(netns, dev, func(h *netlink.Handle, link netlink.Link) error {
		as, err := h.AddrList(link, unix.AF_INET)
		if err != nil {
			return fmt.Errorf("addresses of %s: %w", dev, err)
		}
		for _, a := range as {
			if p, ok := netipPrefix(a.IPNet); ok {
				out = append(out, p)
			}
		}
		return nil
	})
	return out, err
}

func (k routing) SetAddr(netns string, op AddrOp) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return withLink(netns, op.Dev, func(h *netlink.Handle, link netlink.Link) error {
		a := &netlink.Addr{IPNet: ipNet(op.Prefix)}
		var err error
		if op.Delete {
			err = h.AddrDel(link, a)
		} else {
			err = h.AddrAdd(link, a)
		}
		if err != nil {
			return fmt.Errorf("ip addr %s %s dev %s: %w", addOrDel(op.Delete), op.Prefix, op.Dev, err)
		}
		return nil
	})
}

func (k routing) Routes(netns string) ([]RouteOp, error) {
	if err := k.mine(netns); err != nil {
		return nil, err
	}
	var out []RouteOp
	err := withHandle(netns, unix.NETLINK_ROUTE, func(h *netlink.Handle) error {
		rs, err := h.RouteList(nil, unix.AF_INET)
		if err != nil {
			return fmt.Errorf("routes: %w", err)
		}
		for _, r := range rs {
			op := RouteOp{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0)}
			if r.Dst != nil {
				if p, ok := netipPrefix(r.Dst); ok {
					op.Dst = p
				}
			}
			op.Gw, _ = netipAddr(r.Gw)
			op.Src, _ = netipAddr(r.Src)
			if l, err := h.LinkByIndex(r.LinkIndex); err == nil {
				op.Dev = l.Attrs().Name
			}
			out = append(out, op)
		}
		return nil
	})
	return out, err
}

func (k routing) SetRoute(netns string, op RouteOp) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return withLink(netns, op.Dev, func(h *netlink.Handle, link netlink.Link) error {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(op.Dst), Gw: addrSlice(op.Gw), Src: addrSlice(op.Src)}
		if !op.Gw.IsValid() {
			r.Scope = netlink.SCOPE_LINK
		}
		var err error
		if op.Delete {
			err = h.RouteDel(r)
		} else {
			err = h.RouteAdd(r)
		}
		if err != nil {
			return fmt.Errorf("ip route %s: %w", op, err)
		}
		return nil
	})
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), ok
}

// addrSlice is a's bytes, nil for no address.
func addrSlice(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return a.AsSlice()
}
