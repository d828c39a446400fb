package fault

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/mesh"
)

// A Kind is one kind of breakage `mesh break` injects into a running mesh,
// each aimed at one doctor check: the finding Code must name it, in the
// namespace Where says.
type Kind struct {
	Name string `json:"name"`
	What string `json:"what"`
	// Code is the doctor finding that must catch it.
	Code string `json:"code"`
	// Where is the namespace the finding names: host, ingress_sbox, task
	// (the task's netns file), overlay (1-<id>).
	Where string `json:"where"`
	// LB is the only load balancer the fault can be injected with, ""
	// for both.
	LB string `json:"lb,omitempty"`
	// Proto is the protocol the fault needs ("" any).
	Proto string `json:"proto,omitempty"`
	// Probe: the model looks right, only `doctor --probe` sees it.
	Probe bool `json:"probe,omitempty"`
	// Offline: a bundle (`meshtrace collect`) carries what doctor needs
	// to see it. Bundles carry links, rules, IPVS, routes, neighbours,
	// FDB, sysctls, listening sockets and conntrack: only what needs a
	// live probe is not in them.
	Offline bool `json:"offline"`
	// Symptom is what a user sees.
	Symptom string `json:"symptom"`

	plan func(*planner) error
}

// Where values.
const (
	WhereHost    = "host"
	WhereSandbox = addrplan.SandboxName
	WhereTask    = "task"
	WhereOverlay = "overlay"
)

// kinds is the catalogue, in the order `mesh break --list` prints it. A
// new fault is one entry here and its plan function in a file of its own
// (named after the fault); the helpers it builds on are in planner.go
// (places, steps), rules.go (iptables edits), lb.go (IPVS and its
// emulation) and netconf.go (sysctls, task modes).
var kinds = []Kind{
	{Name: "drop-mark", Code: "mark-missing", Where: WhereSandbox, Offline: true, plan: planDropMark,
		What:    "remove the ingress sandbox's mangle MARK rule of the service's published port",
		Symptom: "connection refused (the sandbox gets the packet unmarked and nothing listens there)"},
	{Name: "no-backends", Code: "service-no-backends", Where: WhereSandbox, Offline: true, plan: planNoBackends,
		What:    "remove every real server of the service (IPVS destinations, or the emulation's DNAT rules)",
		Symptom: "connection refused"},
	{Name: "weight-zero", Code: "backends-weight-zero", Where: WhereSandbox, LB: mesh.LBIPVS, Offline: true, plan: planWeightZero,
		What:    "set every real server of the service to weight 0 (IPVS only: the iptables emulation has no weights)",
		Symptom: "connection refused (IPVS has no destination to schedule)"},
	{Name: "no-service", Code: "mark-no-service", Where: WhereSandbox, LB: mesh.LBIPVS, Offline: true, plan: planNoService,
		What:    "delete the IPVS service of the service's fwmark (IPVS only: in the emulation a service is its real servers' rules, see no-backends)",
		Symptom: "connection refused"},
	{Name: "no-lb", Code: "ipvs-missing", Where: WhereSandbox, LB: mesh.LBIptables, Offline: true, plan: planNoLB,
		What:    "remove the whole iptables emulation of IPVS from the ingress sandbox (every service), leaving a kernel without IPVS and nothing in its place",
		Symptom: "connection refused on every published port of this node"},
	{Name: "stale-backend", Code: "stale-backend", Where: WhereSandbox, Offline: true, plan: planStaleBackend,
		What:    "add a real server (IPVS destination or emulation DNAT) that no task owns",
		Symptom: "every (n+1)th connection stalls (it goes to an address nobody answers for)"},
	{Name: "wrong-redirect", Code: "redirect-wrong", Where: WhereTask, Offline: true, plan: planWrongRedirect,
		What:    "make the node's task of the service REDIRECT the published port to the target port + 1",
		Symptom: "connections balanced to that task stall (its ingress filter drops the wrong port)"},
	{Name: "no-dnat", Code: "published-port-no-dnat", Where: WhereHost, Offline: true, plan: planNoDNAT,
		What:    "remove the host's DOCKER-INGRESS DNAT of the published port",
		Symptom: "connection refused on this node only"},
	{Name: "dnat-unowned", Code: "dnat-unowned", Where: WhereHost, Offline: true, plan: planDNATUnowned,
		What:    "make the host DNAT the published port to an address on docker_gwbridge that no namespace owns",
		Symptom: "connections to this node stall (no one answers ARP for the address)"},
	{Name: "dnat-port", Code: "dnat-port-mismatch", Where: WhereHost, Offline: true, plan: planDNATPort,
		What:    "make the host DNAT the published port to the sandbox on another port",
		Symptom: "connection refused on this node (the sandbox marks the published port only)"},
	{Name: "no-snat", Code: "snat-missing", Where: WhereSandbox, Offline: true, plan: planNoSNAT,
		What:    "remove the ingress sandbox's SNAT of balanced packets (affects every published port)",
		Symptom: "connections stall: tasks answer the client directly, around the sandbox"},
	{Name: "mtu", Code: "mtu-mismatch", Where: WhereTask, Offline: true, plan: planMTU,
		What:    "raise the node's task's ingress leg to MTU 1500 and let it send full-size frames (gso_max_segs 1, as a NIC segmenting at its MTU)",
		Symptom: "small answers work, large ones from that task stall (its 1500-byte frames do not fit the 1450 overlay)"},
	{Name: "no-forward", Code: "forwarding-disabled", Where: WhereHost, Offline: true, plan: planNoForward,
		What:    "set net.ipv4.ip_forward=0 in the node's host namespace",
		Symptom: "connections to this node stall"},
	{Name: "forward-drop", Code: "filter-drop", Where: WhereHost, Offline: true, plan: planForwardDrop,
		What:    "set the host's filter FORWARD policy to DROP and remove Docker's DOCKER-INGRESS accept of the published port",
		Symptom: "connections to this node stall"},
	{Name: "task-drop", Code: "task-filter-drop", Where: WhereTask, Offline: true, plan: planTaskDrop,
		What:    "insert a DROP of the target port in the node's task's filter INPUT",
		Symptom: "connections balanced to that task stall"},
	{Name: "block-vxlan", Code: "vxlan-blocked", Where: WhereHost, Offline: true, plan: planBlockVXLAN,
		What:    "insert a DROP of udp/4789 (VXLAN) in the node's host filter INPUT",
		Symptom: "connections balanced to tasks on other nodes stall (their answers never get in)"},
	{Name: "stop-task", Code: "task-not-listening", Where: WhereTask, Offline: true, plan: planStopTask,
		What:    "make the agent close the node's task's server socket",
		Symptom: "connections balanced to that task are refused"},
	{Name: "hang-task", Code: "no-answer", Where: WhereHost, Probe: true, plan: planHangTask,
		What:    "make the agent keep every task of the service listening but never answer",
		Symptom: "connections are accepted and then hang; the model looks healthy, only a probe sees it"},
	{Name: "no-fdb", Code: "vxlan-no-fdb", Where: WhereOverlay, Offline: true, plan: planNoFDB,
		What:    "remove the overlay's FDB entry of the service's task on another node",
		Symptom: "connections balanced to that remote task stall (VXLAN does not know which node has it)"},
	{Name: "stale-conntrack", Code: "stale-conntrack", Where: WhereSandbox, Proto: "udp", Offline: true, plan: planStaleConntrack,
		What:    "send a datagram from the client, then take the task that answered out of the service: its conntrack entry outlives the change",
		Symptom: "the client's next datagrams from the same port still reach the removed task"},
	{Name: "rp-filter", Code: "rp-filter-strict", Where: WhereSandbox, Offline: true, plan: planRPFilter,
		What:    "set strict reverse-path filtering (rp_filter=1) on the ingress sandbox's gwbridge leg eth1",
		Symptom: "none on this mesh's symmetric paths (a latent risk the doctor warns about)"},
}

// Kinds returns the catalogue of faults.
func Kinds() []Kind {
	out := make([]Kind, len(kinds))
	copy(out, kinds)
	return out
}

// Lookup returns the fault kind called name.
func Lookup(name string) (Kind, error) {
	for _, k := range kinds {
		if k.Name == name {
			return k, nil
		}
	}
	var names []string
	for _, k := range kinds {
		names = append(names, k.Name)
	}
	sort.Strings(names)
	return Kind{}, fmt.Errorf("unknown fault %q (faults: %s; see `meshtrace mesh break --list`)", name, strings.Join(names, ", "))
}

// WriteList renders `mesh break --list`.
func WriteList(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FAULT\tDOCTOR CODE\tIN\tWHAT IT DOES")
	for _, k := range kinds {
		what := k.What
		var notes []string
		if k.LB != "" {
			notes = append(notes, "--lb "+k.LB+" only")
		}
		if k.Proto != "" {
			notes = append(notes, k.Proto+" service")
		}
		if k.Probe {
			notes = append(notes, "doctor --probe")
		}
		if len(notes) > 0 {
			what += " [" + strings.Join(notes, ", ") + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, k.Code, k.Where, what)
	}
	return tw.Flush()
}
