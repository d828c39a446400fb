package tuitest

import (
	"time"

	"github.com/meshtrace/meshtrace/trace"
)

// T0 is when the sample connections start.
var T0 = time.Date(2026, 3, 11, 9, 13, 11, 0, time.UTC)

func at(us int) time.Time { return T0.Add(time.Duration(us) * time.Microsecond) }

func hop(netns, ifname, dir, src, dst string, us int) trace.Hop {
	return trace.Hop{Netns: netns, Ifname: ifname, Dir: dir, Src: src, Dst: dst, TS: at(us)}
}

// Conns are two probe connections through the modern bundle's path, as
// trace reports them (every packet's hops): #1 reaches web.1 (SYN,
// SYN/ACK, ACK), #2 disappears in the ingress sandbox.
func Conns() []trace.Flow {
	const cl, node, sb, task = "192.168.100.2:40000", "192.168.56.11:8080", "172.18.0.2:8080", "10.0.0.4:8080"
	syn := []trace.Hop{
		hop("client", "eth0", "out", cl, node, 0),
		hop("host", "eth0", "in", cl, node, 12),
		hop("host", "docker_gwbridge", "out", cl, sb, 30),
		hop("ingress_sbox", "eth1", "in", cl, sb, 41),
		hop("ingress_sbox", "eth0", "out", "10.0.0.2:40000", task, 70),
		hop("09cd513d96a2", "eth0", "in", "10.0.0.2:40000", task, 95),
	}
	synack := []trace.Hop{
		hop("09cd513d96a2", "eth0", "out", task, "10.0.0.2:40000", 140),
		hop("ingress_sbox", "eth0", "in", task, "10.0.0.2:40000", 160),
		hop("ingress_sbox", "eth1", "out", sb, cl, 180),
		hop("host", "eth0", "out", node, cl, 210),
		hop("client", "eth0", "in", node, cl, 222),
	}
	ack := make([]trace.Hop, len(syn))
	for i, h := range syn {
		h.TS = h.TS.Add(300 * time.Microsecond)
		ack[i] = h
	}
	taskNetns := "09cd513d96a2"
	ok := trace.Flow{
		ID: 1, Proto: "tcp", Client: cl, Server: node,
		Backend:  &trace.Backend{IP: "10.0.0.4", Netns: &taskNetns, Task: "web.1"},
		Answered: true, Complete: true,
		Hops: syn, ReplyHops: synack, Start: at(0),
		Rewrites: []trace.Rewrite{
			{Netns: "host", Kind: "dnat", Dir: "request", From: node, To: sb, Rule: "-A DOCKER-INGRESS -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:8080", Seen: "packets"},
			{Netns: "ingress_sbox", Kind: "ipvs", Dir: "request", From: sb, To: task, Seen: "packets", FWMark: 256, Scheduler: "rr"},
			{Netns: "ingress_sbox", Kind: "snat", Dir: "request", From: cl, To: "10.0.0.2:40000", Seen: "packets"},
			{Netns: "09cd513d96a2", Kind: "redirect", Dir: "request", From: task, To: "10.0.0.4:80", Seen: "conntrack"},
		},
		Packets: []trace.PacketSum{
			{Dir: "request", Flags: "SYN", Len: 60, TS: at(0), Hops: syn},
			{Dir: "reply", Flags: "SYN/ACK", Len: 60, TS: at(140), Hops: synack},
			{Dir: "request", Flags: "ACK", Len: 52, TS: at(300), Hops: ack},
		},
	}
	lostHops := make([]trace.Hop, 4)
	for i, h := range syn[:4] {
		h.TS = h.TS.Add(5 * time.Millisecond)
		h.Src = "192.168.100.2:40001"
		lostHops[i] = h
	}
	lost := trace.Flow{
		ID: 2, Proto: "tcp", Client: "192.168.100.2:40001", Server: node,
		Hops: lostHops, Start: at(5000),
		Stop: &trace.Stop{Packet: "request SYN", Netns: "ingress_sbox", Ifname: "eth1", Reason: "mark 0x100 set but no IPVS service for fwmark 256",
			Expected: []string{"ingress_sbox/eth0 out to a real server of FWM 256"}},
		Packets: []trace.PacketSum{{Dir: "request", Flags: "SYN", Len: 60, TS: at(5000), Hops: lostHops}},
	}
	return []trace.Flow{ok, lost}
}
