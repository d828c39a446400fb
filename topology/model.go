// Package topology is meshtrace's pure model of one Swarm node's packet
// plumbing: namespaces, links, firewall rules, IPVS tables, conntrack entries
// and Docker metadata, plus the analysis built on it (roles, published
// ports, path reconstruction) and its renderers. Nothing here touches the
// kernel; readers in package inspect fill the model.
package topology

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
)

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
	// NetnsComplete says Namespaces holds every network namespace the
	// reading found on the node (a live read; a bundle whose
	// NAMESPACES.txt lists them all and holds a folder for each): a
	// namespace absent here is not on the node. False where the set is
	// not known to be whole (a bundle assembled by hand, or written
	// before NAMESPACES.txt), where an absence says nothing.
	NetnsComplete bool        `json:"netns_complete"`
	Docker        *DockerMeta `json:"docker,omitempty"`
	// Notes are facts about the reading itself that change how to read
	// the model, e.g. "kernel has no IPVS (generic netlink family IPVS
	// missing)". They are shown to the user.
	Notes []string `json:"notes,omitempty"`
}

// NetnsRef is how every package names a network namespace: Name is its
// name in the model (the netns file's name: ingress_sbox, 1-c5h7abz82p,
// lb_x, 09cd513d96a2; "host" for the root namespace), which is what hops,
// findings and capture points print and Model.Lookup finds; Path is the
// file it is entered by (/run/docker/netns/ingress_sbox, /proc/1/ns/net),
// "" where there is none (a bundle). Code that enters a namespace takes
// Path, code that names one takes Name: a lone string never means one in
// one place and the other elsewhere. (The kind is always net, as lxkns
// would say.)
type NetnsRef struct {
	Name string `json:"name"`
	Path string `json:"path,omitempty"`
}

// String is the name, or the path of an unnamed namespace.
func (r NetnsRef) String() string {
	if r.Name == "" {
		return r.Path
	}
	return r.Name
}

// Namespace is one network namespace.
type Namespace struct {
	// NetnsRef names it; Path is set when it was read live.
	NetnsRef
	Role Role `json:"role"`
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
	MAC      MAC            `json:"mac,omitzero"`
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
	ID       int        `json:"id"`
	Port     int        `json:"port"`
	Local    netip.Addr `json:"local,omitzero"`
	Group    netip.Addr `json:"group,omitzero"`
	Learning bool       `json:"learning"`
	Proxy    bool       `json:"proxy"`
}

// Route is one routing table entry (main table unless Table says otherwise).
type Route struct {
	// Dst is the destination prefix; the default route's is 0.0.0.0/0
	// (DefaultRoute), printed "default".
	Dst     netip.Prefix
	Gateway netip.Addr
	Dev     string
	Src     netip.Addr
	Table   int
}

// DefaultRoute is the default route's destination.
var DefaultRoute = netip.PrefixFrom(netip.IPv4Unspecified(), 0)

// IsDefault reports whether r is a default route.
func (r Route) IsDefault() bool { return r.Dst.Bits() == 0 }

// DstString is the destination as `ip route` prints it: "default" or
// the prefix.
func (r Route) DstString() string {
	switch {
	case r.IsDefault():
		return "default"
	case !r.Dst.IsValid():
		return ""
	}
	return r.Dst.String()
}

// MarshalJSON writes the route with its destination as DstString says.
func (r Route) MarshalJSON() ([]byte, error) {
	return json.Marshal(routeJSON{r.DstString(), r.Gateway, r.Dev, r.Src, r.Table})
}

// routeJSON is a Route as JSON spells it.
type routeJSON struct {
	Dst     string     `json:"dst"`
	Gateway netip.Addr `json:"gateway,omitzero"`
	Dev     string     `json:"dev,omitempty"`
	Src     netip.Addr `json:"src,omitzero"`
	Table   int        `json:"table,omitempty"`
}

// UnmarshalJSON reads what MarshalJSON writes: "default" is 0.0.0.0/0 (the
// routes are IPv4: `ip -4 route`), so inspect -o json reads back.
func (r *Route) UnmarshalJSON(b []byte) error {
	var v routeJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Route{Gateway: v.Gateway, Dev: v.Dev, Src: v.Src, Table: v.Table}
	switch v.Dst {
	case "":
	case "default":
		r.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	default:
		p, err := netip.ParsePrefix(v.Dst)
		if err != nil {
			return fmt.Errorf("route dst %q: %w", v.Dst, err)
		}
		r.Dst = p
	}
	return nil
}

// Neigh is a neighbour (ARP) entry.
type Neigh struct {
	IP    netip.Addr `json:"ip"`
	MAC   MAC        `json:"mac"` // none without lladdr
	Dev   string     `json:"dev"`
	State string     `json:"state"` // permanent, reachable, stale, ...
}

// FDB is a bridge forwarding database entry; for VXLAN devices Dst is the
// remote VTEP.
type FDB struct {
	MAC   MAC        `json:"mac"`
	Dev   string     `json:"dev"`
	Dst   netip.Addr `json:"dst,omitzero"`
	State string     `json:"state"`
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
	// Impl is LBIPVS for a kernel IPVS service, LBIptables for the
	// mesh provisioner's emulation with statistic/DNAT rules.
	Impl  LBImpl      `json:"impl"`
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
	// Rule is the firewall rule that sends to this real server in the
	// iptables emulation (its first, in PREROUTING or OUTPUT); "" for a
	// kernel IPVS destination.
	Rule string `json:"-"`
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
	// Encrypted: the overlay was created with --opt encrypted (IPsec
	// ESP between the nodes).
	Encrypted bool         `json:"encrypted,omitempty"`
	Subnet    netip.Prefix `json:"subnet,omitzero"`
	Gateway   netip.Addr   `json:"gateway,omitzero"`
	// Endpoints maps container (or "ingress-sbox"/"lb-NAME") to its
	// address on this network.
	Endpoints map[string]netip.Addr `json:"endpoints,omitempty"`
	// Tasks are the service tasks on this network on every node, as
	// `docker network inspect --verbose` lists them (swarm-scoped networks
	// only): a remote backend's task and the node it runs on.
	Tasks []DockerTask `json:"tasks,omitempty"`
	// Peers are the nodes that take part in a swarm network (its gossip
	// peers, `docker network inspect`'s Peers): this node among them.
	Peers []DockerPeer `json:"peers,omitempty"`
}

// DockerPeer is one node of a swarm network: its node id's short form and
// its advertise (data-path) address.
type DockerPeer struct {
	Name string     `json:"name"`
	IP   netip.Addr `json:"ip"`
}

// Equal compares every field (see Route.Equal).
func (p DockerPeer) Equal(o DockerPeer) bool { return p == o }

// DockerTask is one task endpoint of a swarm network's service.
type DockerTask struct {
	Name    string     `json:"name"` // "web.2"
	Service string     `json:"service"`
	IP      netip.Addr `json:"ip"`
	// Node is the address of the node the task runs on ("Host IP").
	Node netip.Addr `json:"node,omitzero"`
}

// DockerService is one `docker service inspect` entry.
type DockerService struct {
	ID           string                  `json:"id"`
	Name         string                  `json:"name"`
	EndpointMode string                  `json:"endpoint_mode,omitempty"` // vip, dnsrr
	VIPs         map[string]netip.Prefix `json:"vips,omitempty"`          // network id -> the VIP with its network's prefix length
	Ports        []DockerPort            `json:"ports,omitempty"`
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
	ID         string                `json:"id"`
	Name       string                `json:"name"`
	SandboxKey string                `json:"sandbox_key,omitempty"`
	Service    string                `json:"service,omitempty"`
	Task       string                `json:"task,omitempty"`
	Networks   map[string]netip.Addr `json:"networks,omitempty"` // network name -> IP
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

// MAC is a link-layer address: comparable (a map key), printed as
// net.HardwareAddr prints it ("02:42:0a:00:00:04"); the zero MAC is none.
type MAC struct{ b string }

// ParseMAC reads a MAC as net.ParseMAC does, or any link-layer address
// as net.HardwareAddr prints it: octets of two hex digits joined by
// colons (a GRE or IPIP device's is its IPv4 address, "c0:00:02:01").
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err == nil {
		return MACFrom(hw), nil
	}
	if len(s) < 2 || len(s) > 3*32-1 || len(s)%3 != 2 {
		return MAC{}, err
	}
	b := make([]byte, 0, (len(s)+1)/3)
	for i := 0; i < len(s); i += 3 {
		if i+2 < len(s) && s[i+2] != ':' {
			return MAC{}, err
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return MAC{}, err
		}
		b = append(b, hi<<4|lo)
	}
	return MACFrom(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// MACFrom is hw as a MAC (none when hw is empty).
func MACFrom(hw net.HardwareAddr) MAC { return MAC{string(hw)} }

// IsValid reports whether the MAC is not none.
func (m MAC) IsValid() bool { return m.b != "" }

// HardwareAddr is the MAC's bytes.
func (m MAC) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(m.b) }

func (m MAC) String() string { return m.HardwareAddr().String() }

// MarshalText prints the MAC as String does ("" for none).
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads what MarshalText prints.
func (m *MAC) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = MAC{}
		return nil
	}
	v, err := ParseMAC(string(b))
	*m = v
	return err
}

// MustParseMAC is ParseMAC for constants: it panics on a bad one.
func MustParseMAC(s string) MAC {
	m, err := ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// Equal reports whether m and o are the same address (for go-cmp, which
// does not look into unexported fields).
func (m MAC) Equal(o MAC) bool { return m == o }

// Equal compares every field, for go-cmp (netip types and MAC have no
// exported fields): Route, Neigh, FDB, VXLANInfo and DockerTask are
// comparable values.
func (r Route) Equal(o Route) bool { return r == o }

// Equal compares every field (see Route.Equal).
func (n Neigh) Equal(o Neigh) bool { return n == o }

// Equal compares every field (see Route.Equal).
func (f FDB) Equal(o FDB) bool { return f == o }

// Equal compares every field (see Route.Equal).
func (v VXLANInfo) Equal(o VXLANInfo) bool { return v == o }

// Equal compares every field (see Route.Equal).
func (t DockerTask) Equal(o DockerTask) bool { return t == o }
