// Package swarm compares the nodes of a Docker Swarm with each other: every
// node's routing-mesh state (one topology.Model each, loaded through
// package source from a bundle, a node of the built-in mesh, or collected
// on every node by `meshtrace swarm collect`) against what the swarm's
// tasks and the other nodes say. A routing-mesh failure is often one node
// out of step: a stale IPVS table, an FDB entry still pointing at a drained
// node, a port published on some nodes only, gossip that stopped. Check
// names that node, and only that node.
//
// It is pure: it reads the models it is given, and what a model does not
// carry (a file not collected, a node without Docker's metadata) is "not
// checked" for that node, never a divergence.
package swarm

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/topology"
)

// Node is one node's model and the name the swarm knows it by (its
// hostname, the bundle's directory name, the mesh's node name).
type Node struct {
	Name  string
	Model *topology.Model
}

// CheckName is one column of the node × check matrix.
type CheckName string

// The checks, in the matrix's order.
const (
	CheckBackends  CheckName = "backends"  // IPVS real servers against the tasks that run
	CheckFDB       CheckName = "fdb"       // overlay neighbour and FDB entries against where each endpoint is
	CheckPublished CheckName = "published" // the published ports every node must answer on
	CheckVNI       CheckName = "vni"       // each overlay's VXLAN id
	CheckMTU       CheckName = "mtu"       // each overlay's MTU
	CheckSubnet    CheckName = "subnet"    // each overlay's subnet
	CheckDataPort  CheckName = "dataport"  // VXLAN's UDP port
	CheckIPVS      CheckName = "ipvs"      // whether the kernel has IPVS
	CheckSysctl    CheckName = "sysctl"    // the load balancers' IPVS sysctls
	CheckFirewall  CheckName = "firewall"  // the iptables backend
	CheckSPI       CheckName = "spi"       // encrypted overlays: every outbound SA has its inbound twin
	CheckGossip    CheckName = "gossip"    // NetworkDB peers per network
)

// Checks lists every check in the matrix's order.
var Checks = []CheckName{CheckBackends, CheckFDB, CheckPublished, CheckVNI, CheckMTU, CheckSubnet,
	CheckDataPort, CheckIPVS, CheckSysctl, CheckFirewall, CheckSPI, CheckGossip}

// Code is a finding's stable code.
type Code string

// Finding codes, one per check.
const (
	CodeBackends  Code = "backends-diverge"
	CodeFDB       Code = "fdb-diverge"
	CodePublished Code = "published-diverge"
	CodeVNI       Code = "vni-diverge"
	CodeMTU       Code = "mtu-diverge"
	CodeSubnet    Code = "subnet-diverge"
	CodeDataPort  Code = "dataport-diverge"
	CodeIPVS      Code = "ipvs-diverge"
	CodeSysctl    Code = "sysctl-diverge"
	CodeFirewall  Code = "firewall-diverge"
	CodeSPI       Code = "spi-unpaired"
	CodeGossip    Code = "gossip-diverge"
)

// Finding is one node out of step with the swarm.
type Finding struct {
	Node     string          `json:"node"`
	Code     Code            `json:"code"`
	Severity doctor.Severity `json:"severity"`
	Check    CheckName       `json:"check"`
	// Service is the Docker service concerned, when one is.
	Service string `json:"service,omitempty"`
	// Network is the overlay network concerned, when one is.
	Network string `json:"network,omitempty"`
	// Netns is the node's namespace the evidence is in.
	Netns    string `json:"netns,omitempty"`
	Summary  string `json:"summary"`
	Evidence string `json:"evidence"`
	Confirm  string `json:"confirm,omitempty"`
	Fix      string `json:"fix,omitempty"`
}

// Status is one cell of the matrix.
type Status string

// Cell values: a finding's severity, or one of these.
const (
	StatusOK         Status = "ok"          // checked, in step
	StatusNotChecked Status = "not-checked" // what it needs was not collected
	StatusNA         Status = "n/a"         // nothing to check (no encrypted overlay, ...)
)

// NodeReport is one row of the matrix.
type NodeReport struct {
	Name string `json:"name"`
	// Addr is the node's address (topology.NodeAddress), when known.
	Addr   netip.Addr           `json:"addr,omitzero"`
	Source string               `json:"source"`
	Checks map[CheckName]Status `json:"checks"`
}

// NotChecked is a check a node could not be compared on, and why (the
// data it needs was not collected there).
type NotChecked struct {
	Node   string    `json:"node"`
	Check  CheckName `json:"check"`
	Reason string    `json:"reason"`
}

// Report is what Check finds.
type Report struct {
	// Consistent is true when no finding is above info.
	Consistent bool          `json:"consistent"`
	Nodes      []*NodeReport `json:"nodes"`
	// Services are the Docker services compared, by name.
	Services   []string     `json:"services"`
	Findings   []Finding    `json:"findings"`
	NotChecked []NotChecked `json:"not_checked"`
}

// Exit is the check's exit status, as doctor's: 1 when a node is out of
// step (a finding above info), else 4 when a check could not run on some
// node for lack of data, else 0.
func (r *Report) Exit() int {
	for _, f := range r.Findings {
		if f.Severity == doctor.Error || f.Severity == doctor.Warning {
			return 1
		}
	}
	if len(r.NotChecked) > 0 {
		return 4
	}
	return 0
}

// Check compares the nodes. Nodes need distinct names; a nil model is a
// node not collected (every check not run there).
func Check(nodes []Node) *Report {
	var k Checker
	for _, n := range nodes {
		k.Add(n)
	}
	return k.Report()
}

// eachNode runs check on every node, several nodes at once (one per
// processor): each run gets a copy of c of its own, whose findings and
// notes are then added to c's in node order, as if the nodes had been
// checked one after the other. check may read c's indexes and write its
// copy's findings and notes and its node's cells, nothing else of c.
func (c *cluster) eachNode(check func(c *cluster, n *node)) {
	parts := make([]cluster, len(c.nodes))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), len(c.nodes)) {
		wg.Go(func() {
			for i := range next {
				parts[i] = *c
				parts[i].findings, parts[i].skipped = nil, nil
				check(&parts[i], c.nodes[i])
			}
		})
	}
	for i := range c.nodes {
		next <- i
	}
	close(next)
	wg.Wait()
	for i := range parts {
		c.findings = append(c.findings, parts[i].findings...)
		c.skipped = append(c.skipped, parts[i].skipped...)
	}
}

// cell records the outcome of check on node n: ran (with or without
// findings), not checked (why), or not applicable.
func (c *cluster) ran(n *node, check CheckName) {
	if _, ok := n.cells[check]; !ok {
		n.cells[check] = StatusOK
	}
}

func (c *cluster) notChecked(n *node, check CheckName, format string, a ...any) {
	c.skipped = append(c.skipped, NotChecked{Node: n.name, Check: check, Reason: fmt.Sprintf(format, a...)})
	// A check that ran in part is not "ok": what it could not judge may
	// be where the node is out of step.
	if s, ok := n.cells[check]; !ok || s == StatusOK {
		n.cells[check] = StatusNotChecked
	}
}

func (c *cluster) notApplicable(n *node, check CheckName) {
	if _, ok := n.cells[check]; !ok {
		n.cells[check] = StatusNA
	}
}

// add records a finding; its node's cell takes the worst severity.
func (c *cluster) add(n *node, f Finding) {
	f.Node = n.name
	c.findings = append(c.findings, f)
	cur := n.cells[f.Check]
	if cur == "" || cur == StatusOK || cur == StatusNotChecked || cur == StatusNA || rank(doctor.Severity(cur)) > rank(f.Severity) {
		n.cells[f.Check] = Status(f.Severity)
	}
}

func rank(s doctor.Severity) int {
	switch s {
	case doctor.Error:
		return 0
	case doctor.Warning:
		return 1
	case doctor.Info:
		return 2
	}
	return 3
}

func (c *cluster) report() *Report {
	r := &Report{Consistent: true, Nodes: []*NodeReport{}, Services: []string{}, Findings: c.findings, NotChecked: c.skipped}
	for _, n := range c.nodes {
		nr := &NodeReport{Name: n.name, Addr: n.addr, Source: n.source, Checks: map[CheckName]Status{}}
		for _, ch := range Checks {
			s, ok := n.cells[ch]
			if !ok {
				s = StatusNA
			}
			nr.Checks[ch] = s
		}
		r.Nodes = append(r.Nodes, nr)
	}
	for name := range c.services {
		r.Services = append(r.Services, name)
	}
	sort.Strings(r.Services)
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	if r.NotChecked == nil {
		r.NotChecked = []NotChecked{}
	}
	order := map[string]int{}
	for i, n := range c.nodes {
		order[n.name] = i
	}
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if rank(a.Severity) != rank(b.Severity) {
			return rank(a.Severity) < rank(b.Severity)
		}
		if order[a.Node] != order[b.Node] {
			return order[a.Node] < order[b.Node]
		}
		return slices.Index(Checks, a.Check) < slices.Index(Checks, b.Check)
	})
	for _, f := range r.Findings {
		if f.Severity == doctor.Error || f.Severity == doctor.Warning {
			r.Consistent = false
		}
	}
	return r
}

// examples lists up to max items and how many more there are.
func examples(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:max], "; "), len(items)-max)
}
