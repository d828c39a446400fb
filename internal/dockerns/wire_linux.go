package dockerns

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// leg is one end of a veth as the builder wants it.
type leg struct {
	ns     *netnsFile
	name   string
	mtu    int
	mac    string
	addr   netip.Prefix
	master string
}

// veth makes a pair between two namespaces of the world and configures
// both ends. It is created in a's namespace with its peer directly in b's,
// so the two ifindexes come from two unrelated counters.
func (b *builder) veth(a, z leg) error {
	la := netlink.LinkAttrs{Name: a.name, MTU: a.mtu}
	if a.mac != "" {
		la.HardwareAddr, _ = net.ParseMAC(a.mac)
	}
	v := &netlink.Veth{LinkAttrs: la, PeerName: z.name, PeerMTU: uint32(z.mtu), PeerNamespace: netlink.NsFd(int(z.ns.fd))}
	if z.mac != "" {
		v.PeerHardwareAddr, _ = net.ParseMAC(z.mac)
	}
	if err := a.ns.h.LinkAdd(v); err != nil {
		return fmt.Errorf("netns %s: add veth %s (peer %s in %s): %w", a.ns.name, a.name, z.name, z.ns.name, err)
	}
	for _, e := range []struct{ l, p leg }{{a, z}, {z, a}} {
		if err := b.setup(e.l.ns, e.l.name, e.l.addr, e.l.master); err != nil {
			return err
		}
		spec := LinkSpec{Name: e.l.name, Kind: "veth", MTU: e.l.mtu, MAC: e.l.mac, Master: e.l.master,
			PeerNetns: e.p.ns.name, PeerIfname: e.p.name}
		if e.l.addr.IsValid() {
			spec.Addrs = []netip.Prefix{e.l.addr}
		}
		b.expect(e.l.ns.name, spec)
	}
	return nil
}

// gwLeg connects n to docker_gwbridge as ifname with address ip and makes
// the bridge its default route.
func (b *builder) gwLeg(n *netnsFile, ifname string, ip netip.Addr) error {
	b.mu.Lock()
	i := b.gwPorts
	b.gwPorts++
	b.mu.Unlock()
	hostSide := addrplan.VethName(b.w.Prefix, "gw", strconv.Itoa(i))
	addr := netip.PrefixFrom(ip, addrplan.GWSubnet.Bits())
	err := b.veth(leg{ns: b.host, name: hostSide, mtu: 1500, master: addrplan.GWBridge},
		leg{ns: n, name: ifname, mtu: 1500, mac: addrplan.MAC(ip), addr: addr})
	if err != nil {
		return err
	}
	r := &netlink.Route{Dst: nil, Gw: addrplan.GWBridgeIP.AsSlice()}
	if err := n.h.RouteAdd(r); err != nil {
		return fmt.Errorf("netns %s: default via %s: %w", n.name, addrplan.GWBridgeIP, err)
	}
	return nil
}

// overlayLeg connects n to an overlay's br0 as ifname with address ip.
func (b *builder) overlayLeg(ovl *netnsFile, n *netnsFile, ifname string, ip netip.Addr, subnet netip.Prefix) error {
	b.mu.Lock()
	var i int
	if ovl == b.ovl {
		i = b.ovlPorts
		b.ovlPorts++
	} else {
		i = b.usrPorts
		b.usrPorts++
	}
	b.mu.Unlock()
	return b.veth(leg{ns: ovl, name: "veth" + strconv.Itoa(i), mtu: addrplan.OverlayMTU, master: "br0"},
		leg{ns: n, name: ifname, mtu: addrplan.OverlayMTU, mac: addrplan.MAC(ip), addr: netip.PrefixFrom(ip, subnet.Bits())})
}

// listen opens the task's servers on its target ports, inside its netns.
func (b *builder) listen(n *netnsFile, ip netip.Addr, ports []dockerrules.Port) error {
	return netnsx.Do(n.path, func() error {
		for _, p := range ports {
			addr := netip.AddrPortFrom(ip, uint16(p.Target)).String()
			var c io.Closer
			var err error
			if p.Proto == "udp" {
				c, err = net.ListenPacket("udp4", addr)
			} else {
				c, err = net.Listen("tcp4", addr)
			}
			if err != nil {
				return fmt.Errorf("netns %s: listen %s/%s: %w", n.name, p.Proto, addr, err)
			}
			b.mu.Lock()
			b.w.closers = append(b.w.closers, c)
			b.mu.Unlock()
		}
		return nil
	})
}

// restore loads iptables-restore text into n. The first load of a netns
// replaces its tables; later ones add (--noflush).
func (b *builder) restore(n *netnsFile, text string) error {
	b.mu.Lock()
	first := len(b.w.Rules[n.name]) == 0
	b.w.Rules[n.name] = append(b.w.Rules[n.name], text)
	b.mu.Unlock()
	args := []string{"-w"}
	if !first {
		args = append(args, "--noflush")
	}
	cmd := exec.Command("iptables-restore", args...)
	cmd.Stdin = strings.NewReader(text)
	if _, err := netnsx.Output(n.path, cmd); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return fmt.Errorf("netns %s: iptables-restore: %w", n.name, err)
	}
	return nil
}

func (b *builder) sysctl(n *netnsFile, key, val string) error {
	if err := n.sysctl(key, val); err != nil {
		return err
	}
	b.mu.Lock()
	if b.w.Sysctls[n.name] == nil {
		b.w.Sysctls[n.name] = map[string]string{}
	}
	b.w.Sysctls[n.name][key] = val
	b.mu.Unlock()
	return nil
}
