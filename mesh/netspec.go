package mesh

import (
	"fmt"
	"net/netip"

	"github.com/meshtrace/meshtrace/internal/addrplan"

	"github.com/meshtrace/meshtrace/internal/dockerrules"
)

// NetnsSpec is everything one namespace of the mesh holds, as data: the
// System builds it in phases (devices, then veths, then configuration).
type NetnsSpec struct {
	Key  string // node0/ingress_sbox, lan, client, ...
	Path string
	Role string // lan, client, host, ingress-sandbox, overlay, task

	Bridges []BridgeSpec
	VXLAN   *VXLANSpec
	// Veths are created from this namespace; the peer end is created
	// directly in PeerPath.
	Veths   []VethSpec
	Addrs   []AddrSpec
	Routes  []RouteSpec
	Neighs  []NeighSpec // permanent IPv4 neighbours
	FDB     []FDBSpec   // permanent `self` FDB entries of a VXLAN device
	Sysctls []Sysctl
	Rules   string // iptables-restore input, "" for none
	IPVS    []IPVSSpec
}

// BridgeSpec is a Linux bridge.
type BridgeSpec struct {
	Name string
	MTU  int // 0: kernel default
}

// VXLANSpec is a VTEP created in CreateIn (the node's host netns, so its UDP
// socket lives on the underlay) under TmpName, then moved into this
// namespace, renamed and enslaved, like Docker's overlay driver does.
type VXLANSpec struct {
	Name, TmpName string
	CreateIn      string
	VNI, Port     int
	MTU           int
	Learning      bool
	Proxy         bool
	L2Miss        bool
	L3Miss        bool
	Master        string
}

// VethSpec is a veth pair.
type VethSpec struct {
	Name       string
	MTU        int
	MAC        string
	PeerPath   string
	PeerName   string
	PeerMTU    int
	PeerMaster string // bridge in the peer namespace, "" for none
}

// AddrSpec is an address on a device.
type AddrSpec struct {
	Dev    string
	Prefix netip.Prefix
}

// RouteSpec is a default route through Gateway on Dev.
type RouteSpec struct {
	Dev     string
	Gateway netip.Addr
}

// NeighSpec is a permanent neighbour entry.
type NeighSpec struct {
	Dev string
	IP  netip.Addr
	MAC string
}

// FDBSpec is a permanent FDB entry on a VXLAN device: MAC is behind the
// VTEP Dst.
type FDBSpec struct {
	Dev string
	MAC string
	Dst netip.Addr
}

// Sysctl is one /proc/sys/KEY write inside the namespace.
type Sysctl struct {
	Key, Value string
}

// IPVSSpec is an IPVS firewall-mark service with masquerading real servers
// on port 0.
type IPVSSpec struct {
	FWMark    uint32
	Scheduler string
	Dests     []netip.Addr
}

// Netns returns the specs of every namespace of the plan: the LAN and the
// client first, then per node its host, overlay, sandbox and tasks.
func (p *Plan) Netns() []*NetnsSpec {
	specs := []*NetnsSpec{
		{Key: "lan", Path: p.LANPath(), Role: "lan", Bridges: []BridgeSpec{{Name: lanBridge}}},
		{
			Key: "client", Path: p.ClientPath(), Role: "client",
			Veths: []VethSpec{{Name: "eth0", MAC: addrplan.MAC(addrplan.ClientIP), PeerPath: p.LANPath(), PeerName: "client", PeerMaster: lanBridge}},
			Addrs: []AddrSpec{{"eth0", netip.PrefixFrom(addrplan.ClientIP, addrplan.LANSubnet.Bits())}},
		},
	}
	for i := range p.Nodes {
		specs = append(specs, p.nodeNetns(i)...)
	}
	return specs
}

func (p *Plan) nodeNetns(ni int) []*NetnsSpec {
	node := p.Nodes[ni]
	host := &NetnsSpec{
		Key: node.Name + "/host", Path: p.HostPath(ni), Role: "host",
		Bridges: []BridgeSpec{{Name: addrplan.GWBridge}},
		Veths:   []VethSpec{{Name: "eth0", MAC: addrplan.MAC(node.IP), PeerPath: p.LANPath(), PeerName: LANPort(node.Name), PeerMaster: lanBridge}},
		Addrs: []AddrSpec{
			{"eth0", netip.PrefixFrom(node.IP, addrplan.LANSubnet.Bits())},
			{addrplan.GWBridge, netip.PrefixFrom(addrplan.GWBridgeIP, addrplan.GWSubnet.Bits())},
		},
		Sysctls: []Sysctl{
			{"net/ipv4/ip_forward", "1"},
			{"net/ipv4/conf/" + addrplan.GWBridge + "/route_localnet", "1"},
		},
		Rules: dockerrules.Host(addrplan.GWBridge, addrplan.GWSubnet, addrplan.SandboxGWIP, p.ports()),
	}
	ovKey := node.Name + "/1-" + p.OverlayID
	overlay := &NetnsSpec{
		Key: ovKey, Path: p.OverlayPath(ni), Role: "overlay",
		Bridges: []BridgeSpec{{Name: addrplan.OverlayBridge, MTU: addrplan.OverlayMTU}},
		VXLAN: &VXLANSpec{
			Name: addrplan.VXLANDev, TmpName: fmt.Sprintf("vx-%06x-%s", addrplan.IngressVNI, p.OverlayID[:5]), CreateIn: host.Path,
			VNI: addrplan.IngressVNI, Port: addrplan.VXLANPort, MTU: addrplan.OverlayMTU, Master: addrplan.OverlayBridge,
			// As dockerd 20.10 creates it (checked on a real node):
			// `vxlan id 4096 dstport 4789 proxy l2miss l3miss`, learning on.
			Learning: true, Proxy: true, L2Miss: true, L3Miss: true,
		},
		Addrs: []AddrSpec{{addrplan.OverlayBridge, netip.PrefixFrom(addrplan.IngressGW, addrplan.IngressSubnet.Bits())}},
	}
	// The overlay driver programs every endpoint on another node: a
	// neighbour entry (for the VTEP's ARP proxy) and an FDB entry pointing
	// the endpoint's MAC at that node.
	for _, ep := range p.endpoints() {
		if ep.node == ni {
			continue
		}
		remote := p.Nodes[ep.node].IP
		overlay.Neighs = append(overlay.Neighs, NeighSpec{Dev: addrplan.VXLANDev, IP: ep.ip, MAC: addrplan.MAC(ep.ip)})
		overlay.FDB = append(overlay.FDB, FDBSpec{Dev: addrplan.VXLANDev, MAC: addrplan.MAC(ep.ip), Dst: remote})
	}

	// Bridge-side veth names as Docker's: in the overlay namespace the
	// overlay driver renames its ports veth0, veth1, ... in attach order;
	// on docker_gwbridge they keep their random "veth" + 7 hex names.
	names := newNameSet()
	ports := 0
	leg := func(netns, network, peerPath, master string, mtu int, mac string) VethSpec {
		var name string
		if peerPath == overlay.Path {
			name = fmt.Sprintf("veth%d", ports)
			ports++
		} else {
			name = names.unique(peerPath, p.Name, netns, network)
		}
		return VethSpec{Name: "", MTU: mtu, MAC: mac, PeerPath: peerPath, PeerName: name, PeerMTU: mtu, PeerMaster: master}
	}

	sbox := &NetnsSpec{
		Key: node.Name + "/" + addrplan.SandboxName, Path: p.SandboxPath(ni), Role: "ingress-sandbox",
		Addrs: []AddrSpec{
			{"eth0", netip.PrefixFrom(node.SandboxIP, addrplan.IngressSubnet.Bits())},
			{"eth1", netip.PrefixFrom(addrplan.SandboxGWIP, addrplan.GWSubnet.Bits())},
		},
		Routes:  []RouteSpec{{"eth1", addrplan.GWBridgeIP}},
		Sysctls: []Sysctl{{"net/ipv4/ip_forward", "1"}},
	}
	ing := leg(addrplan.SandboxName, "ingress", overlay.Path, addrplan.OverlayBridge, addrplan.OverlayMTU, addrplan.MAC(node.SandboxIP))
	ing.Name = "eth0"
	gw := leg(addrplan.SandboxName, "gwbridge", host.Path, addrplan.GWBridge, 0, addrplan.MAC(addrplan.SandboxGWIP))
	gw.Name = "eth1"
	sbox.Veths = []VethSpec{ing, gw}
	var svcs []dockerrules.Service
	for _, s := range p.Services {
		if s.DNSRR() {
			continue // no VIP, no published port: nothing in the sandbox
		}
		ds := dockerrules.Service{Name: s.Name, FWMark: s.FWMark, VIP: s.VIP, Ports: []dockerrules.Port{s.port()}}
		is := IPVSSpec{FWMark: s.FWMark, Scheduler: "rr"}
		for _, t := range s.Tasks {
			ds.Backends = append(ds.Backends, t.IngressIP)
			is.Dests = append(is.Dests, t.IngressIP)
		}
		svcs = append(svcs, ds)
		sbox.Addrs = append(sbox.Addrs, AddrSpec{"eth0", netip.PrefixFrom(s.VIP, 32)})
		if p.LB == LBIPVS {
			sbox.IPVS = append(sbox.IPVS, is)
		}
	}
	opts := dockerrules.SandboxOpts{Emulate: p.LB != LBIPVS, IPVSMatch: p.LB == LBIPVS}
	if p.LB == LBIPVS {
		sbox.Sysctls = append(sbox.Sysctls,
			Sysctl{"net/ipv4/vs/conntrack", "1"},
			Sysctl{"net/ipv4/vs/expire_nodest_conn", "1"},
			Sysctl{"net/ipv4/vs/expire_quiescent_template", "1"})
	}
	sbox.Rules = dockerrules.IngressSandbox(addrplan.IngressSubnet, node.SandboxIP, svcs, opts)

	specs := []*NetnsSpec{host, overlay, sbox}
	for _, s := range p.Services {
		for _, t := range s.Tasks {
			if t.Node != ni {
				continue
			}
			ts := &NetnsSpec{
				Key: node.Name + "/" + t.NetnsID, Path: p.TaskPath(t), Role: "task",
				Addrs: []AddrSpec{
					{"eth0", netip.PrefixFrom(t.IngressIP, addrplan.IngressSubnet.Bits())},
					{"eth1", netip.PrefixFrom(t.GWIP, addrplan.GWSubnet.Bits())},
				},
				Routes: []RouteSpec{{"eth1", addrplan.GWBridgeIP}},
				Rules:  dockerrules.TaskDNS(t.IngressIP, s.ports(), dockerrules.Modern, &t.Resolver),
			}
			ing := leg(t.NetnsID, "ingress", overlay.Path, addrplan.OverlayBridge, addrplan.OverlayMTU, addrplan.MAC(t.IngressIP))
			ing.Name = "eth0"
			gw := leg(t.NetnsID, "gwbridge", host.Path, addrplan.GWBridge, 0, addrplan.MAC(t.GWIP))
			gw.Name = "eth1"
			ts.Veths = []VethSpec{ing, gw}
			specs = append(specs, ts)
		}
	}
	return specs
}

// LANPort is the name of a node's port on the LAN's bridge (in the lan
// namespace): the far end of the node's uplink eth0.
func LANPort(node string) string { return "lan-" + node }

func (s ServicePlan) port() dockerrules.Port {
	return dockerrules.Port{Proto: s.Proto, Published: s.Published, Target: s.Target}
}

// ports are the service's published ports: none for a dnsrr service.
func (s ServicePlan) ports() []dockerrules.Port {
	if s.DNSRR() {
		return nil
	}
	return []dockerrules.Port{s.port()}
}

// ports are every service's published ports.
func (p *Plan) ports() []dockerrules.Port {
	var ps []dockerrules.Port
	for _, s := range p.Services {
		ps = append(ps, s.ports()...)
	}
	return ps
}

type endpoint struct {
	node int
	ip   netip.Addr
}

// endpoints are the ingress overlay's endpoints: every sandbox and task.
func (p *Plan) endpoints() []endpoint {
	var eps []endpoint
	for i, n := range p.Nodes {
		eps = append(eps, endpoint{i, n.SandboxIP})
	}
	for _, t := range p.Tasks() {
		eps = append(eps, endpoint{t.Node, t.IngressIP})
	}
	return eps
}

// nameSet hands out veth names unique within each peer namespace: a hash
// collision is resolved by salting, so names stay deterministic.
type nameSet map[string]map[string]bool

func newNameSet() nameSet { return nameSet{} }

func (s nameSet) unique(netnsPath string, parts ...string) string {
	if s[netnsPath] == nil {
		s[netnsPath] = map[string]bool{}
	}
	for salt := 0; ; salt++ {
		name := addrplan.VethName(append(parts, fmt.Sprint(salt))...)
		if !s[netnsPath][name] {
			s[netnsPath][name] = true
			return name
		}
	}
}
