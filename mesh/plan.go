package mesh

import (
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
)

// The address plan is internal/addrplan's: every mesh uses the same
// numbers (its namespaces are private, so two meshes never see each
// other's addresses). The LAN's bridge is the mesh's own.
const lanBridge = "lanbr"

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
}

// ServicePlan is one service and its tasks.
type ServicePlan struct {
	ServiceSpec
	FWMark uint32     // 0 for a dnsrr service
	VIP    netip.Addr // the service's ingress VIP; none for a dnsrr service
	Tasks  []TaskPlan
}

// TaskPlan is one task (replica).
type TaskPlan struct {
	Name      string // web.1
	Node      int    // index into Plan.Nodes
	NetnsID   string // 12 hex, the netns file name
	IngressIP netip.Addr
	GWIP      netip.Addr // on the node's docker_gwbridge
	// Resolver is the task's embedded DNS server (its ports at
	// 127.0.0.11), served by the agent.
	Resolver dockerrules.Resolver
}

// NewPlan lays out cfg (validated, LB resolved to ipvs or iptables) under
// runDir. It fails when the ingress subnet has too few addresses.
func NewPlan(cfg Config, lb, runDir string) (*Plan, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Plan{Name: cfg.Name, LB: lb, Dir: filepath.Join(runDir, cfg.Name)}
	p.OverlayID = addrplan.NetworkID(cfg.Name, "ingress")

	// Ingress addresses: .1 is br0 (the gateway), then one per node's
	// sandbox, one VIP per service, then the tasks.
	ing := addrplan.Ingress{Nodes: cfg.Nodes, Services: len(cfg.Services)}
	tasks := 0
	for _, s := range cfg.Services {
		tasks += s.Replicas
	}
	if err := ing.Fits(tasks); err != nil {
		return nil, fmt.Errorf("mesh %s: %w", cfg.Name, err)
	}
	for i := range cfg.Nodes {
		p.Nodes = append(p.Nodes, NodePlan{Name: fmt.Sprintf("node%d", i), IP: addrplan.NodeIP(i), SandboxIP: ing.Sandbox(i)})
	}
	for i, s := range cfg.Services {
		sp := ServicePlan{ServiceSpec: s}
		// A dnsrr service leaves its mark and VIP unused: the numbers
		// of the others do not depend on it.
		if !s.DNSRR() {
			sp.FWMark, sp.VIP = uint32(addrplan.FirstFWMark+i), ing.VIP(i)
		}
		p.Services = append(p.Services, sp)
	}
	seen := map[string]string{}
	onNode := make([]int, len(p.Nodes)) // tasks placed on each node so far
	ti := 0
	for si := range p.Services {
		s := &p.Services[si]
		// Replicas go round robin over the nodes: web.1 on node0, web.2
		// on node1, ...
		for r := 1; r <= s.Replicas; r++ {
			ni := (r - 1) % len(p.Nodes)
			t := TaskPlan{
				Name:      fmt.Sprintf("%s.%d", s.Name, r),
				Node:      ni,
				NetnsID:   addrplan.ContainerID(cfg.Name, s.Name, fmt.Sprint(r)),
				IngressIP: ing.Task(ti),
				GWIP:      addrplan.TaskGWIP(onNode[ni]),
			}
			tcp, udp := addrplan.ResolverPorts([]int{s.Target}, cfg.Name, t.NetnsID)
			t.Resolver = dockerrules.Resolver{TCPPort: tcp, UDPPort: udp}
			ti++
			onNode[ni]++
			if other, dup := seen[t.NetnsID]; dup {
				return nil, fmt.Errorf("mesh %s: tasks %s and %s hash to the same netns id %s", cfg.Name, other, t.Name, t.NetnsID)
			}
			seen[t.NetnsID] = t.Name
			s.Tasks = append(s.Tasks, t)
		}
	}
	return p, nil
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
	return filepath.Join(p.NetnsDir(node), addrplan.SandboxName)
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
