// Package trace watches the packets of a published port at every hop of
// the routing mesh and explains what rewrote them, live (AF_PACKET) or
// from capture files.
//
// Live (Run): Plan derives the capture points from the model and the
// path on every node (the client's interface, the host's uplink,
// docker_gwbridge and its veth to the sandbox, both sandbox legs, the
// overlay's ports, bridge and VXLAN device, the underlay, each backend's
// ingress leg). Live opens two TPACKET_V3 sockets per point inside the
// point's namespace (internal/netnsx), one per direction: the kernel BPF
// filter (FilterSpec, golang.org/x/net/bpf) tests skb->pkt_type for
// PACKET_OUTGOING, so the socket a frame arrives on says which way it
// went. Frames stamped before the filter was attached are dropped. The
// probe starts once every socket is open. Nothing on the system changes.
//
// Correlation (Correlate, pure): a packet keeps its IPv4 ID, TCP
// sequence/ack numbers, flags and payload through DNAT, IPVS
// masquerading, SNAT and REDIRECT, and its inner frame through VXLAN, so
// Key groups its sightings (LPacket); packets that share a 5-tuple at any
// hop are one connection (union-find; a SYN with a new ISN splits a
// reused tuple). Analysis turns connections into Flows: the hops of the
// first request and reply, every rewrite between two sightings explained
// from the model's hops (DNAT rule, load balancer fwmark and the rule for
// the chosen real server, SNAT rule, un-NAT on replies, VXLAN
// encapsulation), the REDIRECT that only conntrack shows (AF_PACKET sees
// a packet before PREROUTING), conntrack and IPVS entries read after the
// capture, and where a flow stopped with what the model expected next.
//
// Files (Reader, Replay): trace's pcapng (interface blocks named
// "netns/ifname" or "node/netns/ifname", direction in the packet flags),
// tcpdump's pcap or pcapng on one interface or -i any (Linux cooked v1
// and v2). With a source, Attribute maps foreign files to the namespace
// their packets belong to.
//
// Known limits: UDP datagrams with equal payloads and IP ID 0 from two
// clients with the same source port cannot be told apart after SNAT;
// a segment split differently at two hops (GSO) is two packets; a
// cooked v1 capture has no interface index, so a packet bridged inside
// the captured namespace shows as two packets.
package trace
