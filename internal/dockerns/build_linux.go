package dockerns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
)

// builder carries the mutable state of one Build.
type builder struct {
	o        Options
	w        *World
	mu       sync.Mutex
	host     *netnsFile
	ovl, usr *netnsFile
	ovlPorts int // veths created in the ingress overlay
	usrPorts int
	gwPorts  int
}

// Build makes the world. On failure everything already made is torn down
// and the error says what failed.
func Build(o Options) (*World, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	b := &builder{o: o, w: plan(o)}
	if err := b.build(); err != nil {
		return nil, errors.Join(err, b.w.Close())
	}
	return b.w, nil
}

func (b *builder) build() error {
	w := b.w
	base, err := os.MkdirTemp("", "meshtrace-"+w.Prefix+"-")
	if err != nil {
		return fmt.Errorf("dockerns: %w", err)
	}
	w.Base = base
	w.HostPath = filepath.Join(base, "host")
	w.Dir = filepath.Join(base, "netns")
	if err := os.Mkdir(w.Dir, 0o755); err != nil {
		return fmt.Errorf("dockerns: %w", err)
	}
	if b.host, err = b.netns("host", w.HostPath); err != nil {
		return err
	}
	if err := b.buildHost(); err != nil {
		return err
	}
	if b.ovl, err = b.overlay(w.Overlay, addrplan.IngressSubnet, addrplan.IngressVNI); err != nil {
		return err
	}
	if w.UserOverlay != "" {
		if b.usr, err = b.overlay(w.UserOverlay, UserSubnet, UserVNI); err != nil {
			return err
		}
	}
	if err := b.buildSandbox(); err != nil {
		return err
	}
	if err := b.buildTasks(); err != nil {
		return err
	}
	var ports []dockerrules.Port
	for _, s := range b.w.Services {
		ports = append(ports, s.Ports...)
	}
	return b.restore(b.host, dockerrules.Host(addrplan.GWBridge, addrplan.GWSubnet, addrplan.SandboxGWIP, ports))
}

// netns creates and registers one namespace of the world.
func (b *builder) netns(name, path string) (*netnsFile, error) {
	n, err := newNetns(name, path)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.w.nss = append(b.w.nss, n)
	b.w.Expect[name] = append(b.w.Expect[name], LinkSpec{Name: "lo", Kind: "loopback", MTU: 65536})
	b.mu.Unlock()
	return n, nil
}

func (b *builder) expect(ns string, l LinkSpec) {
	b.mu.Lock()
	b.w.Expect[ns] = append(b.w.Expect[ns], l)
	b.mu.Unlock()
}

func (b *builder) buildHost() error {
	h := b.host
	// The node's uplink: a veth whose peer stays in the host (this
	// kernel has no dummy links), carrying the node address.
	if err := b.veth(leg{ns: h, name: "eth0", mtu: 1500, addr: NodeIP}, leg{ns: h, name: "underlay0", mtu: 1500}); err != nil {
		return err
	}
	gwAddr := netip.PrefixFrom(addrplan.GWBridgeIP, addrplan.GWSubnet.Bits())
	if err := b.bridge(h, addrplan.GWBridge, 1500, gwAddr); err != nil {
		return err
	}
	if err := b.sysctl(h, "net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	// So that 127.0.0.1:PORT reaches the published ports through the DNAT.
	return b.sysctl(h, "net.ipv4.conf.docker_gwbridge.route_localnet", "1")
}

// bridge adds an up bridge with an address.
func (b *builder) bridge(n *netnsFile, name string, mtu int, addr netip.Prefix) error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu}}
	if err := n.h.LinkAdd(br); err != nil {
		return fmt.Errorf("netns %s: add bridge %s: %w", n.name, name, err)
	}
	if err := b.setup(n, name, addr, ""); err != nil {
		return err
	}
	b.expect(n.name, LinkSpec{Name: name, Kind: "bridge", MTU: mtu, Addrs: []netip.Prefix{addr}})
	return nil
}

// setup gives a link in n its address and master and brings it up.
func (b *builder) setup(n *netnsFile, name string, addr netip.Prefix, master string) error {
	l, err := n.h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("netns %s: link %s: %w", n.name, name, err)
	}
	if addr.IsValid() {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}}
		if err := n.h.AddrAdd(l, a); err != nil {
			return fmt.Errorf("netns %s: link %s: add %s: %w", n.name, name, addr, err)
		}
	}
	if master != "" {
		m, err := n.h.LinkByName(master)
		if err != nil {
			return fmt.Errorf("netns %s: master %s: %w", n.name, master, err)
		}
		if err := n.h.LinkSetMasterByIndex(l, m.Attrs().Index); err != nil {
			return fmt.Errorf("netns %s: link %s: master %s: %w", n.name, name, master, err)
		}
	}
	if err := n.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("netns %s: link %s: up: %w", n.name, name, err)
	}
	return nil
}

// overlay builds a 1-<id> namespace: br0 with the subnet's first address
// and a VXLAN VTEP made in the host and moved in, the way the overlay
// driver does it (its UDP socket stays in the host), plus the static FDB
// and neighbour entries for one remote peer.
func (b *builder) overlay(name string, subnet netip.Prefix, vni int) (*netnsFile, error) {
	n, err := b.netns(name, filepath.Join(b.w.Dir, name))
	if err != nil {
		return nil, err
	}
	if err := b.bridge(n, "br0", addrplan.OverlayMTU, netip.PrefixFrom(addrplan.Nth(subnet, 1), subnet.Bits())); err != nil {
		return nil, err
	}
	tmp := "vx-" + strconv.Itoa(vni)
	vx := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: tmp, MTU: addrplan.OverlayMTU}, VxlanId: vni, Port: addrplan.VXLANPort,
		Learning: true, Proxy: true, L2miss: true, L3miss: true}
	if err := b.host.h.LinkAdd(vx); err != nil {
		return nil, fmt.Errorf("netns host: add vxlan %s: %w", tmp, err)
	}
	l, err := b.host.h.LinkByName(tmp)
	if err == nil {
		err = b.host.h.LinkSetNsFd(l, int(n.fd))
	}
	if err != nil {
		return nil, fmt.Errorf("netns host: move vxlan %s to %s: %w", tmp, name, err)
	}
	if l, err = n.h.LinkByName(tmp); err == nil {
		err = n.h.LinkSetName(l, "vxlan0")
	}
	if err != nil {
		return nil, fmt.Errorf("netns %s: rename %s: %w", name, tmp, err)
	}
	if err := b.setup(n, "vxlan0", netip.Prefix{}, "br0"); err != nil {
		return nil, err
	}
	b.expect(name, LinkSpec{Name: "vxlan0", Kind: "vxlan", MTU: addrplan.OverlayMTU, Master: "br0", VNI: vni, Port: addrplan.VXLANPort})
	if subnet == addrplan.IngressSubnet {
		if err := b.remotePeer(n); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (b *builder) remotePeer(n *netnsFile) error {
	vx, err := n.h.LinkByName("vxlan0")
	if err != nil {
		return fmt.Errorf("netns %s: vxlan0: %w", n.name, err)
	}
	mac, _ := net.ParseMAC(RemoteMAC)
	neigh := &netlink.Neigh{LinkIndex: vx.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
		IP: RemoteIP.AsSlice(), HardwareAddr: mac}
	if err := n.h.NeighSet(neigh); err != nil {
		return fmt.Errorf("netns %s: neighbour %s: %w", n.name, RemoteIP, err)
	}
	fdb := &netlink.Neigh{LinkIndex: vx.Attrs().Index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
		Flags: netlink.NTF_SELF, IP: RemoteVTEP.AsSlice(), HardwareAddr: mac}
	if err := n.h.NeighAppend(fdb); err != nil {
		return fmt.Errorf("netns %s: fdb %s dst %s: %w", n.name, RemoteMAC, RemoteVTEP, err)
	}
	return nil
}

func (b *builder) buildSandbox() error {
	w := b.w
	n, err := b.netns(w.Sandbox, filepath.Join(w.Dir, w.Sandbox))
	if err != nil {
		return err
	}
	sboxIP := addrplan.Ingress{Nodes: 1}.Sandbox(0)
	if err := b.overlayLeg(b.ovl, n, "eth0", sboxIP, addrplan.IngressSubnet); err != nil {
		return err
	}
	if err := b.gwLeg(n, "eth1", addrplan.SandboxGWIP); err != nil {
		return err
	}
	if err := b.sysctl(n, "net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	return b.restore(n, dockerrules.IngressSandbox(addrplan.IngressSubnet, sboxIP, w.Services,
		dockerrules.SandboxOpts{Variant: b.o.Variant, Emulate: b.o.Emulate}))
}

func (b *builder) buildTasks() error {
	jobs := make(chan int)
	errs := make([]error, len(b.w.Tasks))
	var wg sync.WaitGroup
	for range b.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				errs[i] = b.buildTask(i)
			}
		}()
	}
	for i := range b.w.Tasks {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return errors.Join(errs...)
}

func (b *builder) buildTask(i int) error {
	t := b.w.Tasks[i]
	n, err := b.netns(t.Name, filepath.Join(b.w.Dir, t.Name))
	if err != nil {
		return err
	}
	if err := b.overlayLeg(b.ovl, n, "eth0", t.IngressIP, addrplan.IngressSubnet); err != nil {
		return err
	}
	if err := b.gwLeg(n, "eth1", t.GwIP); err != nil {
		return err
	}
	if b.usr != nil {
		if err := b.overlayLeg(b.usr, n, "eth2", t.UserIP, UserSubnet); err != nil {
			return err
		}
	}
	if err := b.restore(n, dockerrules.Task(t.IngressIP, t.Ports, b.o.Variant)); err != nil {
		return err
	}
	if i == 0 && b.w.EastWestSvc != nil {
		if err := b.restore(n, dockerrules.EastWest([]dockerrules.Service{*b.w.EastWestSvc}, b.o.Emulate)); err != nil {
			return err
		}
	}
	if b.o.Listen {
		return b.listen(n, t.IngressIP, t.Ports)
	}
	return nil
}

// Close tears the world down: listeners, then every namespace (which takes
// its links with it), then the directories. It is idempotent and works on
// a partly built world.
func (w *World) Close() error {
	if w == nil {
		return nil
	}
	var errs []error
	for _, c := range w.closers {
		c.Close()
	}
	w.closers = nil
	for i := len(w.nss) - 1; i >= 0; i-- {
		if err := w.nss[i].remove(); err != nil {
			errs = append(errs, err)
		}
	}
	if w.Base != "" {
		for _, d := range []string{w.Dir, w.Base} {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("dockerns: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
