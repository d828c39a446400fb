package topology_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/topology"
)

// world is a Docker-shaped node built from the rules dockerd writes
// (internal/dockerrules), parsed by the real iptables-save parser.
type world struct {
	gw        netip.Prefix // docker_gwbridge
	sboxGW    netip.Addr
	ingress   netip.Prefix
	sboxIP    netip.Addr
	local     []netip.Addr // tasks on this node
	remote    []netip.Addr // tasks on other nodes
	port      dockerrules.Port
	mark      uint32
	variant   dockerrules.Variant
	emulate   bool
	sboxName  string
	taskNames []string
}

func newWorld() *world {
	return &world{
		gw:        netip.MustParsePrefix("172.18.0.1/16"),
		sboxGW:    netip.MustParseAddr("172.18.0.2"),
		ingress:   netip.MustParsePrefix("10.0.0.0/24"),
		sboxIP:    netip.MustParseAddr("10.0.0.2"),
		local:     []netip.Addr{netip.MustParseAddr("10.0.0.4")},
		remote:    []netip.Addr{netip.MustParseAddr("10.0.0.5")},
		port:      dockerrules.Port{Proto: "tcp", Published: 8080, Target: 80},
		mark:      0x100,
		sboxName:  "ingress_sbox",
		taskNames: []string{"09cd513d96a2"},
	}
}

func fw(t *testing.T, name, text string) *topology.Firewall {
	t.Helper()
	// iptables-restore input is iptables-save output without counters.
	f, err := parse.IptablesSave(name, strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return f
}

func link(name, kind string, mtu int, addrs ...string) *topology.Link {
	l := &topology.Link{Name: name, Kind: kind, MTU: mtu, Up: true}
	for _, a := range addrs {
		l.Addrs = append(l.Addrs, netip.MustParsePrefix(a))
	}
	return l
}

func (w *world) model(t *testing.T) *topology.Model {
	t.Helper()
	backends := append(append([]netip.Addr{}, w.local...), w.remote...)
	svc := dockerrules.Service{Name: "web", FWMark: w.mark, VIP: netip.MustParseAddr("10.0.0.3"), Ports: []dockerrules.Port{w.port}, Backends: backends}
	host := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "host"},
		Links:    []*topology.Link{link("lo", "loopback", 65536, "127.0.0.1/8"), link("eth0", "device", 1500, "192.168.77.10/24"), link("docker_gwbridge", "bridge", 1500, w.gw.String())},
		Firewall: fw(t, "host", dockerrules.Host("docker_gwbridge", w.gw, w.sboxGW, []dockerrules.Port{w.port}))}
	sbox := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: w.sboxName},
		Links: []*topology.Link{link("eth0", "veth", 1450, netip.PrefixFrom(w.sboxIP, 24).String(), "10.0.0.3/32"), link("eth1", "veth", 1500, netip.PrefixFrom(w.sboxGW, 16).String())},
		Firewall: fw(t, "sbox", dockerrules.IngressSandbox(w.ingress, w.sboxIP, []dockerrules.Service{svc},
			dockerrules.SandboxOpts{Variant: w.variant, IPVSMatch: true, Emulate: w.emulate}))}
	if w.emulate {
		sbox.IPVS = &topology.IPVS{Available: false, Reason: "kernel has no IPVS"}
	} else {
		s := &topology.IPVSService{FWMark: w.mark, Scheduler: "rr", Impl: "ipvs"}
		for _, b := range backends {
			s.Dests = append(s.Dests, &topology.IPVSDest{Addr: b, Forward: "masq", Weight: 1})
		}
		sbox.IPVS = &topology.IPVS{Available: true, Services: []*topology.IPVSService{s}}
	}
	overlay := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "1-c5h7abz82p"}, Links: []*topology.Link{link("br0", "bridge", 1450, "10.0.0.1/24"), link("vxlan0", "vxlan", 1450)}}
	remoteVia(overlay, "192.168.77.11", w.remote...)
	m := &topology.Model{Source: "test", Namespaces: []*topology.Namespace{host, sbox, overlay}}
	for i, a := range w.local {
		m.Namespaces = append(m.Namespaces, &topology.Namespace{NetnsRef: topology.NetnsRef{Name: w.taskNames[i]},
			Links:    []*topology.Link{link("eth0", "veth", 1450, netip.PrefixFrom(a, 24).String()), link("eth1", "veth", 1500, "172.18.0.9/16")},
			Firewall: fw(t, w.taskNames[i], dockerrules.Task(a, []dockerrules.Port{w.port}, w.variant))})
	}
	topology.Classify(m)
	return m
}

// remoteVia gives an overlay the neighbour and FDB entries the overlay
// driver programs for tasks on another node (vtep), as a live read or a
// bundle with ip-neigh.txt and bridge-fdb.txt shows them.
func remoteVia(ovl *topology.Namespace, vtep string, addrs ...netip.Addr) {
	ovl.Neighbours, ovl.FDB = []topology.Neigh{}, []topology.FDB{}
	for i, a := range addrs {
		mac := topology.MustParseMAC(fmt.Sprintf("02:42:0a:00:01:%02x", i+1))
		ovl.Neighbours = append(ovl.Neighbours, topology.Neigh{IP: a, MAC: mac, Dev: "vxlan0", State: "permanent"})
		ovl.FDB = append(ovl.FDB, topology.FDB{MAC: mac, Dev: "vxlan0", Dst: netip.MustParseAddr(vtep), State: "permanent"})
	}
}

func kinds(hops []topology.Hop) string {
	var k []string
	for _, h := range hops {
		k = append(k, string(h.Kind))
	}
	return strings.Join(k, ",")
}

func TestPublishedPathModern(t *testing.T) {
	w := newWorld()
	m := w.model(t)
	if r := m.Lookup(w.sboxName).Role; r != topology.RoleIngressSandbox {
		t.Fatalf("sandbox role = %s", r)
	}
	if r := m.Lookup(w.taskNames[0]).Role; r != topology.RoleTask {
		t.Fatalf("task role = %s", r)
	}
	if r := m.Lookup("1-c5h7abz82p").Role; r != topology.RoleOverlay {
		t.Fatalf("overlay role = %s", r)
	}
	p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: w.port.Published})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Complete {
		t.Fatalf("path incomplete: %+v", p.Hops)
	}
	if got, want := kinds(p.Hops), "dnat,mark,ipvs,snat"; got != want {
		t.Fatalf("hops %s, want %s", got, want)
	}
	if h := p.Hops[0]; h.Netns != "host" || h.Chain != "DOCKER-INGRESS" || h.To.AddrPort() != netip.AddrPortFrom(w.sboxGW, 8080) {
		t.Errorf("dnat hop %+v", h)
	}
	if h := p.Hops[1]; h.Netns != w.sboxName || h.Mark != w.mark || h.Table != "mangle" {
		t.Errorf("mark hop %+v", h)
	}
	if h := p.Hops[2]; h.FWMark != w.mark || h.Impl != "ipvs" || h.Scheduler != "rr" {
		t.Errorf("ipvs hop %+v", h)
	}
	if h := p.Hops[3]; h.To.String() != w.sboxIP.String() || h.Chain != "POSTROUTING" {
		t.Errorf("snat hop %+v", h)
	}
	if len(p.Backends) != 2 {
		t.Fatalf("backends %+v", p.Backends)
	}
	loc, rem := p.Backends[0], p.Backends[1]
	if loc.Remote || loc.Netns == nil || *loc.Netns != w.taskNames[0] || loc.TargetPort != w.port.Target {
		t.Errorf("local backend %+v", loc)
	}
	if kinds(loc.Hops) != "redirect" || loc.Hops[0].ToPort != w.port.Target {
		t.Errorf("local backend hops %+v", loc.Hops)
	}
	if !rem.Remote || rem.Netns != nil || rem.TargetPort != w.port.Target || rem.IP != w.remote[0] {
		t.Errorf("remote backend %+v", rem)
	}
}

func TestPublishedPathEmulated(t *testing.T) {
	w := newWorld()
	w.emulate = true
	p, err := topology.FindPath(w.model(t), topology.Query{Proto: "tcp", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(p.Hops); got != "dnat,mark,ipvs,snat" || !p.Complete {
		t.Fatalf("hops %s complete %v", got, p.Complete)
	}
	if h := p.Hops[2]; h.Impl != "iptables" || h.FWMark != w.mark {
		t.Errorf("lb hop %+v", h)
	}
	if len(p.Backends) != 2 || p.Backends[0].IP.String() != "10.0.0.4" || p.Backends[1].IP.String() != "10.0.0.5" {
		t.Errorf("backends %+v", p.Backends)
	}
}

func TestPublishedPathDocker112(t *testing.T) {
	w := newWorld()
	w.variant = dockerrules.Docker112
	w.sboxName = "5f2a9c1e7b3d" // 1.12 named the sandbox like a container
	m := w.model(t)
	if r := m.Lookup(w.sboxName).Role; r != topology.RoleIngressSandbox {
		t.Fatalf("1.12 sandbox role = %s", r)
	}
	p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(p.Hops); got != "dnat,mark,redirect,ipvs,snat" || !p.Complete {
		t.Fatalf("hops %s complete %v %+v", got, p.Complete, p.Hops)
	}
	if p.Hops[2].Netns != w.sboxName || p.Hops[2].ToPort != 80 {
		t.Errorf("redirect hop %+v", p.Hops[2])
	}
	if b := p.Backends[0]; b.TargetPort != 80 || len(b.Hops) != 0 {
		t.Errorf("backend %+v", b)
	}
}

func TestPathBreaks(t *testing.T) {
	t.Run("mark without IPVS service", func(t *testing.T) {
		w := newWorld()
		m := w.model(t)
		m.Lookup(w.sboxName).IPVS.Services = nil
		p := mustPath(t, m, 8080)
		last := p.Hops[len(p.Hops)-1]
		if p.Complete || last.Kind != "break" || last.Code != topology.BreakNoService || last.Netns != w.sboxName || !strings.Contains(last.Reason, "fwmark 256") {
			t.Fatalf("want break at sandbox naming fwmark 256, got %+v", last)
		}
	})
	t.Run("DNAT to an address nobody owns", func(t *testing.T) {
		w := newWorld()
		w.sboxGW = netip.MustParseAddr("172.18.0.99")
		m := w.model(t)
		// the sandbox keeps 172.18.0.99 in its rules but owns .2
		m.Lookup(w.sboxName).Links[1].Addrs = []netip.Prefix{netip.MustParsePrefix("172.18.0.2/16")}
		m.NetnsComplete = true // every namespace of the node is in the model
		p := mustPath(t, m, 8080)
		last := p.Hops[len(p.Hops)-1]
		if p.Complete || last.Kind != "break" || last.Code != topology.BreakUnowned || last.Netns != "host" || !strings.Contains(last.Reason, "172.18.0.99") {
			t.Fatalf("want break in host naming 172.18.0.99, got %+v", p.Hops)
		}
		// Not known to hold every namespace, and no Docker metadata to
		// name the address: its owner may not have been collected.
		m.NetnsComplete = false
		p = mustPath(t, m, 8080)
		if last := p.Hops[len(p.Hops)-1]; last.Kind != topology.HopUnknown || !strings.Contains(last.Reason, "may not have been collected") {
			t.Fatalf("set of namespaces not whole: want unknown, got %+v", last)
		}
	})
	t.Run("no real servers with weight", func(t *testing.T) {
		w := newWorld()
		m := w.model(t)
		for _, d := range m.Lookup(w.sboxName).IPVS.Services[0].Dests {
			d.Weight = 0
		}
		p := mustPath(t, m, 8080)
		if last := p.Hops[len(p.Hops)-1]; p.Complete || last.Code != topology.BreakWeightZero || !strings.Contains(last.Reason, "weight 0") {
			t.Fatalf("want weight-0 break, got %+v", p.Hops)
		}
	})
	t.Run("weights not shown (ipvsadm -Ln --stats) is no break", func(t *testing.T) {
		w := newWorld()
		m := w.model(t)
		for _, d := range m.Lookup(w.sboxName).IPVS.Services[0].Dests {
			d.Weight, d.WeightUnknown = 0, true
		}
		if p := mustPath(t, m, 8080); !p.Complete {
			t.Fatalf("unknown weights broke the path: %+v", p.Hops)
		}
	})
	t.Run("IPVS missing from the kernel", func(t *testing.T) {
		w := newWorld()
		m := w.model(t)
		m.Lookup(w.sboxName).IPVS = &topology.IPVS{Available: false, Reason: "kernel has no IPVS"}
		p := mustPath(t, m, 8080)
		if last := p.Hops[len(p.Hops)-1]; p.Complete || last.Code != topology.BreakIPVSUnavailable || !strings.Contains(last.Reason, "kernel has no IPVS") {
			t.Fatalf("want break saying the kernel has no IPVS, got %+v", last)
		}
	})
	t.Run("host DNAT lost while the sandbox still marks the port", func(t *testing.T) {
		w := newWorld()
		m := w.model(t)
		c := m.Lookup("host").Firewall.Table("nat").Chain("DOCKER-INGRESS")
		c.Rules = c.Rules[len(c.Rules)-1:] // keep only the RETURN
		p := mustPath(t, m, 8080)
		if last := p.Hops[len(p.Hops)-1]; p.Complete || len(p.Hops) != 1 || last.Code != topology.BreakDNATMissing || last.Netns != "host" {
			t.Fatalf("want a dnat-missing break in host, got %+v", p.Hops)
		}
	})
	t.Run("no SNAT in the sandbox", func(t *testing.T) {
		w := newWorld()
		m := w.model(t)
		m.Lookup(w.sboxName).Firewall.Table("nat").Chain("POSTROUTING").Rules = nil
		p := mustPath(t, m, 8080)
		if last := p.Hops[len(p.Hops)-1]; p.Complete || last.Code != topology.BreakSNATMissing || last.Netns != w.sboxName {
			t.Fatalf("want a snat-missing break in the sandbox, got %+v", p.Hops)
		}
	})
	t.Run("FORWARD policy DROP on the host", func(t *testing.T) {
		w := newWorld()
		m := w.model(t)
		fwd := m.Lookup("host").Firewall.Table("filter").Chain("FORWARD")
		fwd.Policy, fwd.Rules = "DROP", nil
		p := mustPath(t, m, 8080)
		if last := p.Hops[len(p.Hops)-1]; p.Complete || last.Code != topology.BreakFilterDrop || !strings.Contains(last.Reason, "policy DROP") {
			t.Fatalf("want a filter-drop break, got %+v", p.Hops)
		}
	})
	t.Run("not published", func(t *testing.T) {
		w := newWorld()
		_, err := topology.FindPath(w.model(t), topology.Query{Proto: "tcp", Port: 9999})
		var np *topology.NotPublishedError
		if !errors.As(err, &np) || err.Error() != "tcp/9999 is not published on this node" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("udp is not tcp", func(t *testing.T) {
		w := newWorld()
		_, err := topology.FindPath(w.model(t), topology.Query{Proto: "udp", Port: 8080})
		var np *topology.NotPublishedError
		if !errors.As(err, &np) {
			t.Fatalf("udp/8080 must not be published, err = %v", err)
		}
	})
}

func mustPath(t *testing.T, m *topology.Model, port int) *topology.Path {
	t.Helper()
	p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: port})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEastWestVIP(t *testing.T) {
	vip := netip.MustParseAddr("10.0.1.2")
	svc := dockerrules.Service{Name: "api", FWMark: 0x13d, VIP: vip, Backends: []netip.Addr{netip.MustParseAddr("10.0.1.5"), netip.MustParseAddr("10.0.1.6")}}
	for _, emulate := range []bool{false, true} {
		caller := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "c0ffee000001"}, Links: []*topology.Link{link("eth0", "veth", 1450, "10.0.1.4/24"), link("eth1", "veth", 1500, "172.18.0.5/16")},
			Firewall: fw(t, "caller", dockerrules.EastWest([]dockerrules.Service{svc}, emulate))}
		if !emulate {
			s := &topology.IPVSService{FWMark: 0x13d, Scheduler: "rr", Impl: "ipvs"}
			for _, b := range svc.Backends {
				s.Dests = append(s.Dests, &topology.IPVSDest{Addr: b, Forward: "masq", Weight: 1})
			}
			caller.IPVS = &topology.IPVS{Available: true, Services: []*topology.IPVSService{s}}
		}
		api := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "a91000000005"}, Links: []*topology.Link{link("eth0", "veth", 1450, "10.0.1.5/24")}, Firewall: &topology.Firewall{}} // read: no rules
		overlay := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "1-k3m9xq2w7r"}, Links: []*topology.Link{link("br0", "bridge", 1450, "10.0.1.1/24"), link("vxlan0", "vxlan", 1450)}}
		remoteVia(overlay, "192.168.77.11", svc.Backends[1])
		m := &topology.Model{Namespaces: []*topology.Namespace{{NetnsRef: topology.NetnsRef{Name: "host"}}, caller, api, overlay}}
		topology.Classify(m)
		p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 80, VIP: vip, Netns: caller.Name})
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(p.Hops); got != "route,mark,ipvs" || !p.Complete {
			t.Fatalf("emulate=%v hops %s complete %v %+v", emulate, got, p.Complete, p.Hops)
		}
		if p.Hops[1].Mark != 0x13d || p.Hops[2].FWMark != 0x13d {
			t.Errorf("marks %+v", p.Hops)
		}
		// The caller's ip route was not read: the route hop says that its
		// connected route is assumed, and says nothing of it once read.
		if r := p.Hops[0].Reason; !strings.Contains(r, "ip route was not collected") {
			t.Errorf("route hop without routes does not say they were not read: %q", r)
		}
		caller.Routes = []topology.Route{{Dst: netip.MustParsePrefix("10.0.1.0/24"), Dev: "eth0"}}
		if p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 80, VIP: vip, Netns: caller.Name}); err != nil || strings.Contains(p.Hops[0].Reason, "not collected") {
			t.Errorf("route hop with routes read: %v %+v", err, p.Hops)
		}
		if len(p.Backends) != 2 || p.Backends[0].Netns == nil || *p.Backends[0].Netns != api.Name || !p.Backends[1].Remote || p.Backends[0].TargetPort != 80 {
			t.Errorf("backends %+v", p.Backends)
		}
	}
}

// TestEastWestNoServiceNotCollected: a caller whose IPVS table has no
// service for the VIP, and no namespace of the model owns it: broken when
// the model holds every namespace of the node, unknown when it may not
// (a hand-made bundle without Docker's metadata).
func TestEastWestNoServiceNotCollected(t *testing.T) {
	vip := netip.MustParseAddr("10.0.1.2")
	caller := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "c0ffee000001"}, Links: []*topology.Link{link("eth0", "veth", 1450, "10.0.1.4/24")},
		Firewall: &topology.Firewall{}, IPVS: &topology.IPVS{Available: true}}
	host := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "host"}, Links: []*topology.Link{link("eth0", "veth", 1500, "192.168.56.11/24")}}
	m := &topology.Model{Namespaces: []*topology.Namespace{host, caller}}
	topology.Classify(m)
	for _, complete := range []bool{true, false} {
		m.NetnsComplete = complete
		p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 80, VIP: vip, Netns: caller.Name})
		if err != nil {
			t.Fatal(err)
		}
		last := p.Hops[len(p.Hops)-1]
		switch {
		case complete && (last.Kind != topology.HopBreak || last.Code != topology.BreakNoService):
			t.Errorf("every namespace here: want a no-service break, got %+v", last)
		case !complete && (last.Kind != topology.HopUnknown || !strings.Contains(last.Reason, "may not have been collected")):
			t.Errorf("namespaces not known whole: want unknown, got %+v", last)
		}
	}
}
