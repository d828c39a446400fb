// Package trace follows the packets of a published port across every hop
// of the routing mesh and explains what rewrote them. It is pure: frames
// come from a Source (trace/capture's live AF_PACKET capture, or
// trace/pcapio's capture files) and leave as a stream of events.
//
// Plan derives the capture points from the model and the path on every
// node (the client's interface, the host's uplink, docker_gwbridge and
// its veth to the sandbox, both sandbox legs, the overlay's ports, bridge
// and VXLAN device, the underlay, each backend's ingress leg), the route a
// request is expected to take to each backend, and what the capture keeps
// (FilterSpec).
//
// Correlation (Correlator, incremental): a packet keeps its IPv4 ID, TCP
// sequence/ack numbers, flags and payload through DNAT, IPVS
// masquerading, SNAT and REDIRECT, and its inner frame through VXLAN, so
// Key groups its sightings (LPacket); packets that share a 5-tuple at any
// hop are one connection (a SYN with a new ISN splits a reused tuple). A
// connection ends when it is closed (TCP FIN both ways or a RST, after
// Linger; UDP: the answer back where the request was first seen) or
// silent for the idle timeout, in capture time, and is then forgotten:
// memory follows the connections in flight.
//
// ESP (esp.go): on an encrypted overlay the underlay carries VXLAN as ESP
// (xfrm transport mode). An ESP packet is tied to the inner packet the
// node's vxlan device sent just before (or, received, sent on just after)
// by its SA (the SPI in the model's xfrm states), the exact length its
// algorithm makes of the VXLAN datagram, time and per-SA order; on the
// other node's underlay the same (SPI, seq) is the same packet. What
// several connections' packets fit is said ambiguous, what the model
// cannot explain (xfrm not collected) unmatched: never guessed. Plan
// keeps ESP (FilterSpec.ESP) where a host has ESP SAs; an east-west call
// (a path of --vip --netns) is planned by planVIP.
//
// Explanation (Analysis): the hops of the first request and reply, every
// rewrite between two sightings explained from the model's hops (DNAT
// rule, load balancer fwmark and the rule for the chosen real server,
// SNAT rule, un-NAT on replies, VXLAN encapsulation), the REDIRECT that
// only conntrack shows (AF_PACKET sees a packet before PREROUTING),
// conntrack and IPVS entries read after a live capture, and where a flow
// stopped (Flow.Stop) with what the model expected next.
//
// Loss (loss.go): around a live capture, trace/capture snapshots the
// kernel's counters of every namespace on the plan (rules, chain
// policies, /proc/net/snmp and netstat, nf_conntrack, links, IPVS);
// AttributeLosses names, for each place flows stopped (or an answered
// flow's retransmitted segments were lost), the drop counters that moved
// in the namespaces between the two hops, matched to the packets lost
// there (Flow.Loss: "consistent with", never a counter that did not
// move; "nothing moved" said as such).
//
// Stream runs the two over a Source: Ready (live), Progress, FlowUpdated
// (in flight, or ended and waiting for what is read after the capture),
// FlowEnded, FlowGone, Done. Collect makes the batch Result of `-o json`;
// WriteTextStream writes text as the flows end.
//
// Replay: with a source, a first reading of the files (Survey) attributes
// foreign captures (tcpdump's) to the namespace their packets belong to.
//
// Known limits: UDP datagrams with equal payloads and IP ID 0 from two
// clients with the same source port cannot be told apart after SNAT; a
// UDP flow is one request and its answer (a later datagram on the same
// ports is another flow); a segment split differently at two hops (GSO)
// is two packets; a cooked v1 capture has no interface index, so a packet
// bridged inside the captured namespace shows as two packets.
package trace
