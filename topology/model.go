// Package topology is meshtrace's pure model of one Swarm node's packet
// plumbing: namespaces, links, firewall rules, IPVS tables, conntrack entries
// and Docker metadata, plus the analysis built on it (roles, published
// ports, path reconstruction) and its renderers. Nothing here touches the
// kernel; readers in package inspect fill the model.
package topology

import "net/netip"

// Role is what a namespace does in the routing mesh. It is derived from what
// the namespace holds and how it is wired (see Classify), never from its name.
type Role string

const (
	RoleHost           Role = "host"
	RoleIngressSandbox Role = "ingress-sandbox"
	RoleOverlay        Role = "overlay"
	RoleLB             Role = "lb"
	RoleTask           Role = "task"
	// RoleOther: its wiring was read and leads nowhere near the mesh.
	RoleOther Role = "other"
	// RoleUnknown: what would decide was not collected, or leads out of
	// what was read; never forced into another role (see Classify).
	RoleUnknown Role = "unknown"
)

// Model is everything meshtrace read from one node.
type Model struct {
	// Source says where the model came from: "live", "bundle:DIR",
	// "mesh:NAME/NODE".
	Source     string       `json:"source"`
	Namespaces []*Namespace `json:"namespaces"`
	Docker     *DockerMeta  `json:"docker,omitempty"`
	// Notes are facts about the reading itself that change how to read
	// the model, e.g. "kernel has no IPVS (generic netlink family IPVS
	// missing)". They are shown to the user.
	Notes []string `json:"notes,omitempty"`
}

// Namespace is one network namespace.
type Namespace struct {
	// Name is the netns file name (ingress_sbox, 1-c5h7abz82p, lb_x,
	// 09cd513d96a2) or "host" for the root namespace.
	Name string `json:"name"`
	// Path is the file the namespace was opened from, when live.
	Path string `json:"path,omitempty"`
	Role Role   `json:"role"`
	// RoleEvidence is what Classify decided Role on, one fact a line.
	RoleEvidence []string `json:"role_evidence,omitempty"`
	// Inode identifies the namespace: the inode of its nsfs file when
	// read live, 0 when unknown (bundles).
	Inode uint64 `json:"inode,omitempty"`
	// NetnsIDs maps the netnsid this namespace assigned to other
	// namespaces (as used by IFLA_LINK_NETNSID on its links) to their names.
	NetnsIDs map[int]string `json:"netns_ids,omitempty"`

	Links      []*Link     `json:"links"`
	Routes     []Route     `json:"routes,omitempty"`
	Neighbours []Neigh     `json:"neighbours,omitempty"`
	FDB        []FDB       `json:"fdb,omitempty"`
	Sysctls    Sysctls     `json:"sysctls,omitempty"`
	Firewall   *Firewall   `json:"firewall,omitempty"`  // nil: not collected
	IPVS       *IPVS       `json:"ipvs,omitempty"`      // nil: not collected
	Conntrack  []Conntrack `json:"conntrack,omitempty"` // nil: not collected
	Sockets    []Socket    `json:"sockets,omitempty"`   // listening sockets, nil: not collected
	Docker     *NetnsMeta  `json:"docker,omitempty"`
	// Errors are problems reading this namespace, each naming what failed.
	Errors []string `json:"errors,omitempty"`

	OtherFirewall *Firewall `json:"other_firewall,omitempty"` // the other iptables backend's rules (firewall_other.go)
	Xfrm          *Xfrm     `json:"xfrm,omitempty"`           // IPsec SAs and policies, nil: not collected (xfrm.go)
	Counters      *Counters `json:"counters,omitempty"`       // kernel counters, nil: not collected (counters.go)
}

// Link is one network interface.
type Link struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	// Kind is the rtnetlink link kind: veth, bridge, vxlan, dummy, device
	// (no kind), loopback, ...
	Kind string `json:"kind"`
	// KindFrom is set when the input did not show the kind (plain `ip
	// addr`) and InferKinds read it from the wiring: what proves it.
	KindFrom string         `json:"kind_from,omitempty"`
	MTU      int            `json:"mtu"`
	MAC      string         `json:"mac,omitempty"`
	Up       bool           `json:"up"`
	Addrs    []netip.Prefix `json:"addrs,omitempty"`
	// Master is the name of the bridge this link is a port of.
	Master string `json:"master,omitempty"`
	// Peer is the other end of a veth.
	Peer  *Peer      `json:"peer,omitempty"`
	VXLAN *VXLANInfo `json:"vxlan,omitempty"`
}

// Peer is the other end of a veth pair as the kernel reports it: its ifindex
// (IFLA_LINK) and, when it lives in another namespace, that namespace's
// netnsid as seen from the link's own namespace (IFLA_LINK_NETNSID). Netns and
// Ifname are filled once the peer is resolved to a namespace of the model.
type Peer struct {
	Index   int    `json:"index"`
	NetnsID int    `json:"netnsid"` // -1: same namespace
	Netns   string `json:"netns,omitempty"`
	Ifname  string `json:"ifname,omitempty"`
}

// VXLANInfo holds a VXLAN device's attributes.
type VXLANInfo struct {
	ID       int    `json:"id"`
	Port     int    `json:"port"`
	Local    string `json:"local,omitempty"`
	Group    string `json:"group,omitempty"`
	Learning bool   `json:"learning"`
	Proxy    bool   `json:"proxy"`
}

// Route is one routing table entry (main table unless Table says otherwise).
type Route struct {
	Dst     string `json:"dst"` // "default" or a prefix
	Gateway string `json:"gateway,omitempty"`
	Dev     string `json:"dev,omitempty"`
	Src     string `json:"src,omitempty"`
	Table   int    `json:"table,omitempty"`
}

// Neigh is a neighbour (ARP) entry.
type Neigh struct {
	IP    string `json:"ip"`
	MAC   string `json:"mac"`
	Dev   string `json:"dev"`
	State string `json:"state"` // permanent, reachable, stale, ...
}

// FDB is a bridge forwarding database entry; for VXLAN devices Dst is the
// remote VTEP.
type FDB struct {
	MAC   string `json:"mac"`
	Dev   string `json:"dev"`
	Dst   string `json:"dst,omitempty"`
	State string `json:"state"`
}

// Sysctls holds the per-namespace knobs that decide forwarding. Missing keys
// were not read.
type Sysctls map[string]string

// Socket is a listening socket.
type Socket struct {
	Proto string     `json:"proto"`
	Addr  netip.Addr `json:"addr"`
	Port  int        `json:"port"`
}

// Conntrack is one connection tracking entry: the original and reply
// tuples show exactly which NAT happened.
type Conntrack struct {
	Proto   string `json:"proto"`
	Orig    Tuple  `json:"orig"`
	Reply   Tuple  `json:"reply"`
	Mark    uint32 `json:"mark,omitempty"`
	State   string `json:"state,omitempty"` // TCP state, when known
	Timeout uint32 `json:"timeout,omitempty"`
	Zone    uint16 `json:"zone,omitempty"`
}

// Tuple is a conntrack tuple.
type Tuple struct {
	Src   netip.Addr `json:"src"`
	Dst   netip.Addr `json:"dst"`
	SPort uint16     `json:"sport"`
	DPort uint16     `json:"dport"`
}

// IPVS is a namespace's IPVS table.
type IPVS struct {
	// Available is false when the kernel has no IPVS; then Services is
	// empty and means nothing. Reason says how that was established.
	Available bool           `json:"available"`
	Reason    string         `json:"reason,omitempty"`
	Services  []*IPVSService `json:"services"`
	// Timeouts are the connection idle timeouts (ipvsadm -L --timeout),
	// nil when not read.
	Timeouts *IPVSTimeouts `json:"timeouts,omitempty"`
}

// IPVSTimeouts are IPVS's idle timeouts in seconds: a connection idle for
// longer is forgotten, and its next packet is balanced afresh.
type IPVSTimeouts struct {
	TCP    int `json:"tcp"`
	TCPFin int `json:"tcp_fin"`
	UDP    int `json:"udp"`
}

// IPVSService is a virtual service: a firewall mark (FWMark != 0) or a
// proto/address/port triple.
type IPVSService struct {
	FWMark    uint32     `json:"fwmark,omitempty"`
	Proto     string     `json:"proto,omitempty"` // tcp, udp, sctp; empty for fwmark
	Addr      netip.Addr `json:"addr,omitzero"`
	Port      int        `json:"port,omitempty"`
	Scheduler string     `json:"scheduler"`
	// Persistent is the persistence timeout in seconds, 0 when off.
	Persistent int `json:"persistent,omitempty"`
	// Impl is "ipvs" for a kernel IPVS service, "iptables" for the
	// mesh provisioner's emulation with statistic/DNAT rules.
	Impl  string      `json:"impl"`
	Dests []*IPVSDest `json:"dests"`
	Stats *IPVSStats  `json:"stats,omitempty"`
	// Rules names the firewall rules that implement an emulated service.
	Rules []string `json:"rules,omitempty"`
}

// IPVSDest is a real server.
type IPVSDest struct {
	Addr    netip.Addr `json:"addr"`
	Port    int        `json:"port"`
	Forward string     `json:"forward"` // masq, route, tunnel
	Weight  int        `json:"weight"`
	// WeightUnknown is set when the source did not show the weight
	// (`ipvsadm -Ln --stats`); Weight is then 0 and means nothing.
	WeightUnknown bool       `json:"weight_unknown,omitempty"`
	ActiveConns   int        `json:"active_conns"`
	InactConns    int        `json:"inact_conns"`
	Stats         *IPVSStats `json:"stats,omitempty"`
}

// IPVSStats are the counters of `ipvsadm -Ln --stats`.
type IPVSStats struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"in_pkts"`
	OutPkts  uint64 `json:"out_pkts"`
	InBytes  uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
}

// DockerMeta is what the Docker engine says about the node, when it
// answered or when a bundle carried its JSON.
type DockerMeta struct {
	Networks   []DockerNetwork   `json:"networks,omitempty"`
	Services   []DockerService   `json:"services,omitempty"`
	Containers []DockerContainer `json:"containers,omitempty"`
}

// DockerNetwork is one `docker network inspect` entry.
type DockerNetwork struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Driver  string `json:"driver"`
	Scope   string `json:"scope"`
	Ingress bool   `json:"ingress,omitempty"`
	Subnet  string `json:"subnet,omitempty"`
	Gateway string `json:"gateway,omitempty"`
	// Endpoints maps container (or "ingress-sbox"/"lb-NAME") to its
	// address on this network.
	Endpoints map[string]string `json:"endpoints,omitempty"`
	// Tasks are the service tasks on this network on every node, as
	// `docker network inspect --verbose` lists them (swarm-scoped networks
	// only): a remote backend's task and the node it runs on.
	Tasks []DockerTask `json:"tasks,omitempty"`
}

// DockerTask is one task endpoint of a swarm network's service.
type DockerTask struct {
	Name    string `json:"name"` // "web.2"
	Service string `json:"service"`
	IP      string `json:"ip"`
	// Node is the address of the node the task runs on ("Host IP").
	Node string `json:"node,omitempty"`
}

// DockerService is one `docker service inspect` entry.
type DockerService struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	EndpointMode string            `json:"endpoint_mode,omitempty"` // vip, dnsrr
	VIPs         map[string]string `json:"vips,omitempty"`          // network id -> CIDR
	Ports        []DockerPort      `json:"ports,omitempty"`
}

// DockerPort is a published port of a service.
type DockerPort struct {
	Proto     string `json:"proto"`
	Published int    `json:"published"`
	Target    int    `json:"target"`
	Mode      string `json:"mode,omitempty"` // ingress, host
}

// DockerContainer is one `docker inspect` container entry.
type DockerContainer struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	SandboxKey string            `json:"sandbox_key,omitempty"`
	Service    string            `json:"service,omitempty"`
	Task       string            `json:"task,omitempty"`
	Networks   map[string]string `json:"networks,omitempty"` // network name -> IP
}

// NetnsMeta is the Docker metadata attached to one namespace.
type NetnsMeta struct {
	Container string `json:"container,omitempty"`
	Service   string `json:"service,omitempty"`
	Task      string `json:"task,omitempty"`
	Network   string `json:"network,omitempty"`
}

// Lookup returns the namespace with the given name, or nil.
func (m *Model) Lookup(name string) *Namespace {
	for _, ns := range m.Namespaces {
		if ns.Name == name {
			return ns
		}
	}
	return nil
}

// Link returns the link with the given name, or nil.
func (ns *Namespace) Link(name string) *Link {
	for _, l := range ns.Links {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// LinkByIndex returns the link with the given ifindex, or nil.
func (ns *Namespace) LinkByIndex(idx int) *Link {
	for _, l := range ns.Links {
		if l.Index == idx {
			return l
		}
	}
	return nil
}

// Owns reports whether one of the namespace's links carries addr, and which.
func (ns *Namespace) Owns(addr netip.Addr) (*Link, bool) {
	for _, l := range ns.Links {
		for _, p := range l.Addrs {
			if p.Addr() == addr {
				return l, true
			}
		}
	}
	return nil, false
}

// Owner returns the namespace that owns addr; when several do, the first in
// model order.
func (m *Model) Owner(addr netip.Addr) *Namespace {
	for _, ns := range m.Namespaces {
		if _, ok := ns.Owns(addr); ok {
			return ns
		}
	}
	return nil
}
