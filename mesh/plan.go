package mesh

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
)

// The address plan. Every mesh uses the same numbers: its namespaces are
// private, so two meshes never see each other's addresses.
var (
	LANSubnet     = netip.MustParsePrefix("192.168.77.0/24")
	ClientIP      = netip.MustParseAddr("192.168.77.9")
	firstNodeIP   = netip.MustParseAddr("192.168.77.10")
	GWSubnet      = netip.MustParsePrefix("172.18.0.0/16")
	GWBridgeIP    = netip.MustParseAddr("172.18.0.1")
	SandboxGWIP   = netip.MustParseAddr("172.18.0.2")
	IngressSubnet = netip.MustParsePrefix("10.0.0.0/24")
	IngressGW     = netip.MustParseAddr("10.0.0.1")
)

// Fixed names, as Docker spells them.
const (
	GWBridge      = "docker_gwbridge"
	SandboxName   = "ingress_sbox"
	OverlayBridge = "br0"
	VXLANDev      = "vxlan0"
	VNI           = 4096
	VXLANPort     = 4789
	OverlayMTU    = 1450
	FirstFWMark   = 0x100
	lanBridge     = "lanbr"
)

// Plan is the complete, deterministic layout of one mesh: every address,
// MAC, namespace file and link name, derived from the Config alone.
type Plan struct {
	Name      string
	LB        string // ipvs or iptables (auto already resolved)
	Dir       string // RUNDIR/NAME
	OverlayID string // 10 chars: the ingress overlay netns is 1-<OverlayID>
	Nodes     []NodePlan
	Services  []ServicePlan
}

// NodePlan is one node.
type NodePlan struct {
	Name      string
	IP        netip.Addr // on the underlay LAN
	SandboxIP netip.Addr // ingress_sbox's address on the ingress overlay
	nextGW    netip.Addr
}

// ServicePlan is one service and its tasks.
type ServicePlan struct {
	ServiceSpec
	FWMark uint32
	VIP    netip.Addr // the service's ingress VIP
	Tasks  []TaskPlan
}

// TaskPlan is one task (replica).
type TaskPlan struct {
	Name      string // web.1
	Node      int    // index into Plan.Nodes
	NetnsID   string // 12 hex, the netns file name
	IngressIP netip.Addr
	GWIP      netip.Addr // on the node's docker_gwbridge
}

// NewPlan lays out cfg (validated, LB resolved to ipvs or iptables) under
// runDir. It fails when the ingress subnet has too few addresses.
func NewPlan(cfg Config, lb, runDir string) (*Plan, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Plan{Name: cfg.Name, LB: lb, Dir: filepath.Join(runDir, cfg.Name)}
	p.OverlayID = base36(hash(cfg.Name, "ingress"), 10)

	// Ingress addresses: .1 is br0 (the gateway), then one per node's
	// sandbox, one VIP per service, then the tasks.
	need := cfg.Nodes + len(cfg.Services)
	for _, s := range cfg.Services {
		need += s.Replicas
	}
	if avail := ingressHosts() - 1; need > avail {
		return nil, fmt.Errorf("mesh %s: %d nodes, %d services and their tasks need %d addresses on the ingress network %s, which has %d",
			cfg.Name, cfg.Nodes, len(cfg.Services), need, IngressSubnet, avail)
	}
	next := IngressGW.Next()
	alloc := func() netip.Addr { a := next; next = next.Next(); return a }

	ip := firstNodeIP
	for i := range cfg.Nodes {
		p.Nodes = append(p.Nodes, NodePlan{
			Name: fmt.Sprintf("node%d", i), IP: ip, SandboxIP: alloc(), nextGW: SandboxGWIP.Next(),
		})
		ip = ip.Next()
	}
	for i, s := range cfg.Services {
		p.Services = append(p.Services, ServicePlan{ServiceSpec: s, FWMark: uint32(FirstFWMark + i), VIP: alloc()})
	}
	seen := map[string]string{}
	for si := range p.Services {
		s := &p.Services[si]
		// Replicas go round robin over the nodes: web.1 on node0, web.2
		// on node1, ...
		for r := 1; r <= s.Replicas; r++ {
			ni := (r - 1) % len(p.Nodes)
			node := &p.Nodes[ni]
			t := TaskPlan{
				Name:      fmt.Sprintf("%s.%d", s.Name, r),
				Node:      ni,
				NetnsID:   hex.EncodeToString(hash(cfg.Name, s.Name, fmt.Sprint(r)))[:12],
				IngressIP: alloc(),
				GWIP:      node.nextGW,
			}
			node.nextGW = node.nextGW.Next()
			if other, dup := seen[t.NetnsID]; dup {
				return nil, fmt.Errorf("mesh %s: tasks %s and %s hash to the same netns id %s", cfg.Name, other, t.Name, t.NetnsID)
			}
			seen[t.NetnsID] = t.Name
			s.Tasks = append(s.Tasks, t)
		}
	}
	return p, nil
}

// ingressHosts is the number of usable host addresses of IngressSubnet.
func ingressHosts() int {
	return 1<<(32-IngressSubnet.Bits()) - 2
}

// Paths of a mesh's namespace files.
func (p *Plan) LANPath() string    { return filepath.Join(p.Dir, "lan") }
func (p *Plan) ClientPath() string { return filepath.Join(p.Dir, "client") }
func (p *Plan) HostPath(node int) string {
	return filepath.Join(p.Dir, p.Nodes[node].Name, "host")
}
func (p *Plan) NetnsDir(node int) string {
	return filepath.Join(p.Dir, p.Nodes[node].Name, "netns")
}
func (p *Plan) SandboxPath(node int) string {
	return filepath.Join(p.NetnsDir(node), SandboxName)
}
func (p *Plan) OverlayPath(node int) string {
	return filepath.Join(p.NetnsDir(node), "1-"+p.OverlayID)
}
func (p *Plan) TaskPath(t TaskPlan) string {
	return filepath.Join(p.NetnsDir(t.Node), t.NetnsID)
}

// Tasks returns every task of every service, in service order.
func (p *Plan) Tasks() []TaskPlan {
	var ts []TaskPlan
	for _, s := range p.Services {
		ts = append(ts, s.Tasks...)
	}
	return ts
}

// MAC returns the MAC Docker derives from an IPv4 address: 02:42 and the
// four address bytes.
func MAC(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

// vethName returns a Docker-style veth name ("veth" + 7 hex) for one leg
// of an endpoint, stable for the given parts (mesh, netns, network, salt).
func vethName(parts ...string) string {
	return "veth" + hex.EncodeToString(hash(parts...))[:7]
}

func hash(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// base36 renders the first bytes of b as n lower-case base-36 characters,
// the alphabet of Swarm network ids.
func base36(b []byte, n int) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	out := make([]byte, n)
	for i := range out {
		out[i] = digits[int(b[i])%36]
	}
	return string(out)
}
