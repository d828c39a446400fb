package doctor

import (
	"fmt"
	"io"
	"strings"
)

// CodeInfo is one finding code doctor can report: the severities it is
// reported with and one line saying what it means. Codes is the one list:
// the README's doctor section is generated from it (WriteCodeList), and a
// test holds every code the checks emit to it.
type CodeInfo struct {
	Code string
	// Severity is the severity it is reported with; "warning/error" when
	// it depends on how bad it is.
	Severity string
	What     string
}

// Codes are every finding code, grouped as the checks run.
var Codes = []CodeInfo{
	// The node itself.
	{"not-a-swarm-node", "info", "the host is not a swarm node (no docker_gwbridge, no ingress sandbox, no overlay, no swarm network in Docker's metadata): nothing else is checked"},
	// A published port's path.
	{"published-port-no-dnat", "error", "a port Docker publishes (or the ingress sandbox marks) has no DNAT in the host's DOCKER-INGRESS"},
	{"dnat-port-mismatch", "error", "the host DNATs a published port to another port than itself, which the sandbox does not mark"},
	{"dnat-unowned", "error", "the host DNATs a published port to an address no namespace on the node owns"},
	{"ingress-shadowed", "error", "a DROP in raw PREROUTING or filter FORWARD (Docker 28.0.0's DOCKER chain) takes a published port's packet before DOCKER-INGRESS accepts it"},
	{"filter-drop", "error", "a filter rule or policy on the path drops a published port's packet (or a VIP call, or a task's DNS lookup)"},
	{"mark-missing", "error", "the ingress sandbox gets a published port's packet unmarked, so IPVS never sees it"},
	{"mark-no-service", "error", "the packet is marked but no IPVS service takes the mark"},
	{"service-no-backends", "error", "the IPVS service (or its iptables emulation) behind a port or VIP has no real servers"},
	{"backends-weight-zero", "error", "every real server behind a port or VIP has weight 0 (drained)"},
	{"ipvs-missing", "error", "the kernel has no IPVS and nothing emulates it: the mesh cannot balance"},
	{"snat-missing", "error", "the sandbox (or lb_) does not SNAT balanced packets; tasks reply around it"},
	{"path-broken", "error", "a published port's path breaks in a way no other code names (see `meshtrace path`)"},
	{"stale-backend", "error", "an IPVS real server belongs to no task, here or on another node"},
	{"vxlan-no-fdb", "error", "a remote backend has no overlay FDB entry: VXLAN does not know its node"},
	{"vxlan-wrong-vtep", "error", "the overlay sends a remote backend's traffic to another node than the one Docker says it runs on"},
	{"redirect-wrong", "error", "a task's REDIRECT gives it another port than the service's target port"},
	{"task-filter-drop", "error", "a task's filter drops the balanced packet"},
	{"task-not-listening", "error", "nothing listens on the target port in a task the path reaches"},
	{"stale-conntrack", "warning", "a UDP conntrack entry still sends a client to where the path no longer leads"},
	{"no-answer", "error", "with --probe: the path looks complete but a request gets no answer"},
	// Service VIPs (east-west).
	{"vip-no-service", "error", "calls to a service VIP reach no load balancer (no mark or IPVS service)"},
	{"vip-path-broken", "error", "a service VIP's east-west path breaks in a way no other code names"},
	// The overlay and the underlay.
	{"mtu-mismatch", "error", "an overlay leg's MTU is larger than the VXLAN device's"},
	{"mtu-underlay", "error", "the VXLAN device's MTU plus its 50 bytes does not fit the underlay"},
	{"vxlan-blocked", "error", "the host's filter INPUT/OUTPUT drops VXLAN (udp/4789) to or from another node"},
	{"gossip-blocked", "warning/error", "the host's firewall drops the gossip port (tcp/udp 7946) to or from another node (warning when no peer is known and a node on the LAN stands for one)"},
	{"esp-blocked", "warning/error", "the host's firewall drops ESP (IP protocol 50) to or from another node of an encrypted overlay (warning when no peer is known and a node on the LAN stands for one)"},
	{"xfrm-missing", "error", "an encrypted overlay lacks Docker's IPsec state for another node (its outbound or inbound ESP SA, or the out policy)"},
	{"firewall-split", "warning/error", "Docker's rules are in one iptables backend while the other holds rules acting on the same packets (error when they drop or rewrite them)"},
	{"subnet-overlap", "error", "a host route, or one of the host's own prefixes, overlaps an overlay or ingress subnet"},
	{"subnet-exhausted", "warning/error", "a swarm network's subnet is (nearly) out of addresses for tasks, VIPs and load-balancer endpoints: new tasks stay in New"},
	{"vxlan-port-shared", "warning/error", "a VXLAN device of the host's own (flannel, NSX, OVS) uses Docker's data-path port (error when its VNI is an overlay's too)"},
	{"stale-neigh", "error", "an overlay's PERMANENT neighbour entry has another MAC than the endpoint Docker has at that address"},
	{"vtep-source", "error", "the route to another node leaves from another source address than the node's advertise address"},
	{"bad-checksum", "error", "packets reach a hop with a wrong TCP/UDP checksum though the kernel marks them complete (broken checksum offload)"},
	// Embedded DNS.
	{"dns-rules-missing", "error", "a task's DOCKER_OUTPUT DNAT of 127.0.0.11:53 to its embedded DNS server is missing"},
	{"dns-no-listener", "error", "a task's DNS DNAT leads to a port nothing listens on in the task"},
	// The firewall as a whole.
	{"rp-filter-strict", "warning", "strict reverse-path filtering in the ingress sandbox drops replies routed back through another leg"},
	{"forwarding-disabled", "error", "IPv4 forwarding is off in the host or the ingress sandbox"},
	{"conntrack-full", "warning/error", "the conntrack table is 90% full (error when full): new connections are dropped"},
	// IPVS settings.
	{"ipvs-idle-timeout", "warning", "IPVS forgets idle TCP connections sooner than the application's keep-alive (--keepalive)"},
	{"ipvs-timeouts", "info", "IPVS's idle timeouts, to compare with the application's keep-alives"},
	{"ipvs-expire-nodest-off", "info", "connections to a removed real server are not expired"},
	{"ipvs-conn-reuse-mode", "info", "IPVS connection reuse mode"},
}

// WriteCodeList writes Codes as the README's list: one line per code.
func WriteCodeList(w io.Writer) error {
	var b strings.Builder
	for _, c := range Codes {
		fmt.Fprintf(&b, "- `%s` (%s): %s\n", c.Code, c.Severity, c.What)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
