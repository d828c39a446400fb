package fault

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/meshtrace/meshtrace/mesh"
)

// Kernel is what injecting and undoing faults needs from the machine, by
// concern: reads and writes inside the mesh's namespaces, traffic from its
// client, and the agent's control channel. Each part is a narrow
// interface with its fake (fake_test.go); NewKernel returns the real ones,
// which refuse every namespace that is not the mesh's own.
//
// A fault that needs a new kind of change adds a method to the interface
// of its concern (or a new concern here), the real one in a *_linux.go
// file, the fake, and an operation in ops.go that applies and undoes it.
type Kernel struct {
	Firewall Firewall
	// Legacy is the other iptables backend (x_tables, iptables-legacy):
	// the mesh's rules are in nf_tables.
	Legacy    Firewall
	Sysctls   Sysctls
	Links     Links
	Routing   Routing
	Overlay   Overlay
	NIC       NIC
	LB        Balancer
	Conntrack Conntrack
	Traffic   Traffic
	Tasks     Tasks
}

// Firewall is a namespace's iptables rules.
type Firewall interface {
	// SaveRules returns `iptables-save -t TABLE` of the namespace.
	SaveRules(netns, table string) (string, error)
	// RestoreRules runs lines through `iptables-restore --noflush` as
	// one transaction on table.
	RestoreRules(netns, table string, lines []string) error
}

// Sysctls are a namespace's /proc/sys/net.
type Sysctls interface {
	// Sysctl reads /proc/sys/KEY (slash-separated) in the namespace.
	Sysctl(netns, key string) (string, error)
	// SysctlGlob reads every /proc/sys key matching pattern.
	SysctlGlob(netns, pattern string) (map[string]string, error)
	SetSysctl(netns, key, value string) error
}

// Links are a namespace's network devices.
type Links interface {
	// Link returns a link's MTU and GSO segment limit.
	Link(netns, name string) (LinkOp, error)
	SetLink(netns string, l LinkOp) error
}

// Routing is a namespace's IPv4 addresses and main routing table.
type Routing interface {
	// Addrs lists the IPv4 addresses of a link.
	Addrs(netns, dev string) ([]netip.Prefix, error)
	SetAddr(netns string, op AddrOp) error
	// Routes lists the main table's IPv4 routes.
	Routes(netns string) ([]RouteOp, error)
	SetRoute(netns string, op RouteOp) error
}

// Overlay is what the overlay driver programs on a VXLAN device, and the
// neighbours learned from it.
type Overlay interface {
	// FDB lists the permanent `self` FDB entries of a device that have a
	// destination.
	FDB(netns, dev string) ([]mesh.FDBSpec, error)
	SetFDB(netns string, op FDBOp) error
	// Neigh returns the MAC of the permanent IPv4 neighbour ip of dev
	// ("" when there is none).
	Neigh(netns, dev string, ip netip.Addr) (string, error)
	// SetNeigh replaces a permanent neighbour, or forgets a learned one.
	SetNeigh(netns string, op NeighOp) error
}

// NIC is what a link offers below the stack: checksum offload, and the
// tc programs on its ingress.
type NIC interface {
	// TxChecksum says whether the link leaves TX checksums to the
	// "hardware" (offload on: packets may leave CHECKSUM_PARTIAL).
	TxChecksum(netns, dev string) (bool, error)
	SetTxChecksum(netns, dev string, on bool) error
	// Clsact says whether the link has a clsact qdisc (where tc
	// programs hook in).
	Clsact(netns, dev string) (bool, error)
	// SetBadChecksum attaches (on) the program that corrupts the inner
	// L4 checksum of VXLAN frames to the link's ingress, in a clsact
	// qdisc of its own; off removes that qdisc and with it the program.
	SetBadChecksum(netns, dev string, on bool) error
}

// Balancer is a namespace's IPVS.
type Balancer interface {
	// IPVSServices lists the firewall-mark services with their real
	// servers' weights.
	IPVSServices(netns string) ([]IPVSState, error)
	IPVS(netns string, op IPVSOp) error
}

// IPVSState is one firewall-mark service as read back.
type IPVSState struct {
	FWMark    uint32
	Scheduler string
	Dests     []IPVSDestState
}

// IPVSDestState is one real server.
type IPVSDestState struct {
	Addr   string
	Weight int
}

// Conntrack is a namespace's connection tracking table.
type Conntrack interface {
	// DeleteConntrack deletes the entries of proto with original source
	// port sport and returns how many there were.
	DeleteConntrack(netns, proto string, sport int) (int, error)
}

// Traffic is what a fault sends through the mesh.
type Traffic interface {
	// Send sends one datagram (udp) from the namespace, from local port
	// sport, to addr and returns the first line of the answer (the task).
	Send(netns, proto, addr string, sport int) (string, error)
}

// Tasks are the agent's task servers and the tasks' embedded DNS servers.
type Tasks interface {
	// SetTaskMode puts a task's server in mode (mesh.TaskServe, ...)
	// and returns the mode it had.
	SetTaskMode(task, mode string) (prev string, err error)
	// SetResolverMode puts a task's embedded DNS server in mode
	// (mesh.TaskServe or mesh.TaskStop) and returns the mode it had.
	SetResolverMode(task, mode string) (prev string, err error)
}

// meshOnly refuses a namespace file that is not one of mesh name's own
// (under dir): a fault (or a tampered faults.json) never reaches another
// namespace, the real root one least of all.
type meshOnly struct{ name, dir string }

func (m meshOnly) mine(netns string) error {
	rel, err := filepath.Rel(m.dir, filepath.Clean(netns))
	if netns == "" || err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("netns %q is not a namespace of mesh %s (%s)", netns, m.name, m.dir)
	}
	return nil
}
