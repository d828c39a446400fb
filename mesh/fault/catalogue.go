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
	// AnyService: the fault needs no published port, so a dnsrr service
	// will do (the default service is still the first published one).
	AnyService bool `json:"any_service,omitempty"`
	// Pending: doctor has no detector for the fault's code yet. Evidence
	// says what one should look at; the root tests check the fault's
	// symptom instead (TestPendingFaults) until it is flipped into the
	// doctor matrix.
	Pending bool `json:"pending,omitempty"`
	// Evidence is what a detector sees of the fault, one observable per
	// entry, with Confirm the command a user runs to see it.
	Evidence []Evidence `json:"evidence,omitempty"`
	Confirm  string     `json:"confirm,omitempty"`

	plan func(*planner) error
}

// Evidence is one thing a detector sees of a fault.
type Evidence struct {
	// Kind is what it is: EvRule, EvListener, EvRoute, ...
	Kind string `json:"kind"`
	// Where is the namespace, as Kind.Where names them, or "lan",
	// "client", "peer host" (the node's peers' root namespaces).
	Where string `json:"where"`
	// What is the observable, with the mesh's numbers as an example.
	What string `json:"what"`
}

// Evidence kinds.
const (
	EvRule      = "rule"      // an iptables rule or policy (which backend, table, chain)
	EvListener  = "listener"  // a listening socket (ss -Htuln), or its absence
	EvRoute     = "route"     // a route, or `ip route get`'s answer
	EvAddress   = "address"   // an address of a link
	EvNeighbour = "neighbour" // an `ip neigh` entry
	EvFDB       = "fdb"       // a `bridge fdb` entry
	EvLink      = "link"      // a link's settings (ethtool features, qdiscs, tc filters)
	EvCounter   = "counter"   // a kernel counter (/proc/net/snmp, ip -s link)
	EvCapture   = "capture"   // what a capture at a hop shows (trace, doctor --probe)
	EvProbe     = "probe"     // what a live request shows
	EvDocker    = "docker"    // what Docker's metadata says (network inspect, node inspect)
)

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

	// Issue 13's faults. No detector yet (Pending): each says what a
	// detector sees, and TestPendingFaults checks its symptom.
	{Name: "gossip-blocked", Code: "gossip-blocked", Where: WhereHost, Offline: true, AnyService: true, Pending: true, plan: planGossipBlocked,
		What:    "insert DROPs of tcp/7946 and udp/7946 (NetworkDB's gossip) first in the node's host filter INPUT",
		Symptom: "the node's gossip port is unreachable from its peers (tcp connects time out, udp goes unanswered); on a real swarm the node drops out of the networks' peer lists and its published ports answer only with local tasks",
		Confirm: "nc -zv -w2 NODE 7946 (from a peer); iptables -S INPUT",
		Evidence: []Evidence{
			{EvRule, WhereHost, "filter INPUT: -p tcp -m tcp --dport 7946 -j DROP and -p udp -m udp --dport 7946 -j DROP, before any accept (a packet to 7946 from a peer evaluates to DROP)"},
			{EvListener, WhereHost, "tcp 0.0.0.0:7946 LISTEN and udp 0.0.0.0:7946 (the node's gossip port: the rule, not a missing listener, is what stops it)"},
			{EvProbe, "peer host", "tcp NODE:7946 from a peer: timeout, not refused; udp: no answer"},
		}},
	{Name: "dns-rules-missing", Code: "dns-rules-missing", Where: WhereTask, Offline: true, AnyService: true, Pending: true, plan: planDNSRulesMissing,
		What:    "flush the node's task's nat DOCKER_OUTPUT and DOCKER_POSTROUTING (the DNAT of 127.0.0.11:53 to its embedded DNS server and the SNAT back); chains, jumps and the server stay",
		Symptom: "every DNS lookup in that task fails at once (127.0.0.11:53 refuses: udp port unreachable, tcp reset); the other tasks resolve",
		Confirm: "nsenter --net=TASK-NETNS iptables -t nat -S DOCKER_OUTPUT; nsenter --net=TASK-NETNS ss -Htuln src 127.0.0.11",
		Evidence: []Evidence{
			{EvRule, WhereTask, "nat OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT is there, DOCKER_OUTPUT has no -d 127.0.0.11/32 -p udp/tcp --dport 53 -j DNAT --to-destination 127.0.0.11:PORT (DOCKER_POSTROUTING no SNAT --to-source :53); a query to 127.0.0.11:53 evaluates to no NAT"},
			{EvListener, WhereTask, "udp 127.0.0.11:PORT and tcp 127.0.0.11:PORT listen (the resolver runs: its ports are in the mesh's state, resolver.udp/.tcp); nothing listens on 127.0.0.11:53"},
			{EvProbe, WhereTask, "a lookup at 127.0.0.11:53 from the task (internal/probe.Lookup): ECONNREFUSED"},
		}},
	{Name: "dns-no-listener", Code: "dns-no-listener", Where: WhereTask, Offline: true, AnyService: true, Pending: true, plan: planDNSNoListener,
		What:    "make the agent close the node's task's embedded DNS server (its udp and tcp sockets on 127.0.0.11); the DNAT rules stay",
		Symptom: "every DNS lookup in that task fails at once (the DNAT leads to a closed port: refused); the other tasks resolve",
		Confirm: "nsenter --net=TASK-NETNS iptables -t nat -S DOCKER_OUTPUT; nsenter --net=TASK-NETNS ss -Htuln src 127.0.0.11",
		Evidence: []Evidence{
			{EvRule, WhereTask, "nat DOCKER_OUTPUT: -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:UDPPORT (and tcp), as Docker writes them"},
			{EvListener, WhereTask, "no socket on 127.0.0.11:UDPPORT (udp) nor 127.0.0.11:TCPPORT (tcp): the DNAT targets listen nowhere (a bundle's ss.txt of the task shows it)"},
			{EvProbe, WhereTask, "a lookup at 127.0.0.11:53 from the task: ECONNREFUSED"},
		}},
	{Name: "subnet-overlap", Code: "subnet-overlap", Where: WhereHost, Offline: true, AnyService: true, Pending: true, plan: planSubnetOverlap,
		What:    "route a LAN network that overlaps the ingress network from the node (10.0.0.0/16 via the client, which gets a host address in it)",
		Symptom: "the node reaches the LAN host (10.0.0.254 here), its tasks cannot: their ingress leg claims 10.0.0.0/24, so the packets go into the overlay instead of out through docker_gwbridge",
		Confirm: "ip route; docker network inspect ingress --format '{{(index .IPAM.Config 0).Subnet}}'",
		Evidence: []Evidence{
			{EvRoute, WhereHost, "main table: 10.0.0.0/16 via 192.168.77.9 dev eth0, which overlaps the ingress subnet 10.0.0.0/24 (br0's address in 1-<id>, Subnet in networks.json); the same check holds for the uplink's own prefix (eth0's address) and for every overlay's subnet"},
			{EvDocker, WhereHost, "the ingress network's IPAM subnet 10.0.0.0/24"},
			{EvProbe, WhereTask, "from a task: the LAN host times out (ARP for it goes unanswered on the overlay); from the host: it answers"},
		}},
	{Name: "bad-checksum", Code: "bad-checksum", Where: WhereOverlay, Probe: true, AnyService: true, Pending: true, plan: planBadChecksum,
		What:    "make the node's uplink a broken NIC: the LAN's port to it checksums in software (no CHECKSUM_PARTIAL frames reach it), a tc program on its eth0 ingress corrupts the inner TCP/UDP checksum of every VXLAN frame",
		Symptom: "ping works, TCP over the overlay stalls: connections between this node and tasks on other nodes hang (through this node's published port, half of them, those balanced to a remote task); local tasks answer",
		Confirm: "tcpdump -vv -ni vxlan0 (in the overlay netns): 'cksum 0x... (incorrect -> 0x...)'; nstat -az TcpInCsumErrors in the task or the ingress sandbox",
		Evidence: []Evidence{
			{EvCapture, WhereOverlay, "at vxlan0/br0 in 1-<id> (the first hop after decapsulation; eth0 of the host shows the frames before the tc ingress hook, still good): inner TCP segments whose checksum is wrong while the capture's tp_status has no TP_STATUS_CSUMNOTREADY (a complete packet, not one whose checksum is merely not computed yet)"},
			{EvCounter, WhereTask, "/proc/net/snmp Tcp InCsumErrors grows in the receiving namespace (the task for requests from other nodes, ingress_sbox for answers to it); Udp InCsumErrors for UDP"},
			{EvLink, WhereHost, "eth0: a clsact qdisc with an ingress bpf filter (meshtrace-bad-checksum, direct-action): the injector, not something a detector should need"},
			{EvLink, "lan", "lan-NODE: tx-checksum-ip-generic off (so frames arrive complete)"},
			{EvCounter, WhereHost, "the outer UDP checksum stays right (the mesh's VXLAN, like dockerd's, has udpcsum on; the program corrects it as a NIC computing it over its own bad inner packet would), so the host's Udp InCsumErrors does not move: a NIC that also broke the outer checksum would show there, at the host hop"},
		}},
	{Name: "firewall-split", Code: "firewall-split", Where: WhereHost, Offline: true, AnyService: true, Pending: true, plan: planFirewallSplit,
		What:    "give the node's host a legacy (x_tables) filter table with FORWARD policy DROP, as ufw on iptables-legacy leaves it, while Docker's rules are in nf_tables",
		Symptom: "connections to this node's published ports stall (forwarded to the ingress sandbox, then dropped by the other backend's FORWARD); iptables-nft -S shows nothing wrong",
		Confirm: "iptables-legacy-save; iptables-nft-save",
		Evidence: []Evidence{
			{EvRule, WhereHost, "iptables-legacy-save: *filter :FORWARD DROP; iptables-nft-save (the live nf_tables reader) holds DOCKER-INGRESS, DOCKER-USER: both backends have a FORWARD hook the published port's packets cross"},
			{EvProbe, "client", "NODE:PUBLISHED from the LAN: timeout"},
			{EvRule, WhereHost, "after repair the legacy filter table stays (x_tables keeps a table once made in a namespace) with ACCEPT policies and no rules: that is no split"},
		}},
	{Name: "stale-neigh", Code: "stale-neigh", Where: WhereOverlay, Offline: true, AnyService: true, Pending: true, plan: planStaleNeigh,
		What:    "point the overlay's permanent neighbour of the service's task on another node at a MAC no endpoint has (an old container's), and make the ingress sandbox forget what it learned",
		Symptom: "connections balanced to that remote task stall (the VXLAN ARP proxy answers the stale MAC, which no FDB entry knows); the others answer",
		Confirm: "ip neigh show nud permanent; bridge fdb show dev vxlan0 (in the overlay netns); docker network inspect -v ingress",
		Evidence: []Evidence{
			{EvNeighbour, WhereOverlay, "10.0.0.7 dev vxlan0 lladdr 02:42:0a:00:00:fe PERMANENT, while the endpoint at 10.0.0.7 (network inspect -v: the task's EndpointIP; its MAC is 02:42 + the address, 02:42:0a:00:00:07) has another MAC"},
			{EvFDB, WhereOverlay, "no fdb entry for 02:42:0a:00:00:fe on vxlan0; the endpoint's real MAC 02:42:0a:00:00:07 has one (dst the remote node)"},
			{EvNeighbour, WhereSandbox, "ingress_sbox learns 10.0.0.7 lladdr 02:42:0a:00:00:fe on eth0 once it sent there"},
		}},
	{Name: "vtep-source", Code: "vtep-source", Where: WhereHost, Offline: true, AnyService: true, Pending: true, plan: planVTEPSource,
		What:    "give the node a second address on eth0 and routes to its peer nodes that prefer it as source (the VXLAN device has no fixed local address)",
		Symptom: "connections from this node to tasks on other nodes stall: its VXLAN packets leave from the second address, and the peers drop them (their static FDB entries put this node's endpoints behind its advertise address)",
		Confirm: "ip route get PEER-IP (src must be the node's advertise address); docker info --format '{{.Swarm.NodeAddr}}'",
		Evidence: []Evidence{
			{EvRoute, WhereHost, "192.168.77.11 dev eth0 scope link src 192.168.77.254: `ip route get 192.168.77.11` answers src 192.168.77.254, not the advertise address 192.168.77.10 (the node's address in the mesh's state / Swarm.NodeAddr)"},
			{EvAddress, WhereHost, "eth0 has 192.168.77.254/32 besides 192.168.77.10/24"},
			{EvFDB, "peer host", "the peers' overlay FDB entries for this node's endpoints say dst 192.168.77.10"},
		}},
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
		if k.Pending {
			notes = append(notes, "no detector yet")
		}
		if len(notes) > 0 {
			what += " [" + strings.Join(notes, ", ") + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, k.Code, k.Where, what)
	}
	return tw.Flush()
}
