package trace

import (
	"fmt"
	"strings"
	"time"
)

// Result is what trace and replay print (`-o json`).
type Result struct {
	Proto  string `json:"proto"`
	Port   int    `json:"port"`
	Source string `json:"source,omitempty"`
	Flows  []Flow `json:"flows"`
	// Points are the capture points (live: the sockets opened; replay:
	// the interfaces of the files) with what each saw.
	Points []PointStat   `json:"points"`
	Probes []ProbeResult `json:"probes,omitempty"`
	Frames int           `json:"frames"`
	// Ignored counts frames without an IPv4 TCP/UDP packet (ARP, IPv6,
	// fragments, truncated frames).
	Ignored int `json:"ignored"`
	// ESP is what became of the ESP packets seen on the underlay, per SA
	// (esp.go): nil when there were none.
	ESP   []ESPStat `json:"esp,omitempty"`
	Notes []string  `json:"notes,omitempty"`
	// Error is set when reading stopped early (a bad file): the flows
	// are those read so far.
	Error string `json:"error,omitempty"`
}

// Flow is one connection (TCP) or request/reply exchange (UDP).
type Flow struct {
	ID     int    `json:"id"`
	Proto  string `json:"proto"`
	Client string `json:"client"`
	// Server is where the client sent it, as seen at the first hop.
	Server  string   `json:"server"`
	Backend *Backend `json:"backend"`
	// Complete: the capture holds the connection's whole life (TCP: SYN
	// and FIN both ways or a RST; UDP: the request and a reply).
	Complete bool `json:"complete"`
	// Midstream: a TCP connection the capture joined after it began (no
	// SYN seen either way), such as the last ACKs of a connection that
	// closed as the trace started, or a UDP answer whose request went out
	// before it. It is neither complete nor broken: its beginning is not
	// in the capture.
	Midstream bool `json:"midstream,omitempty"`
	// Answered: the backend accepted it (TCP SYN/ACK, UDP reply).
	Answered bool `json:"answered"`
	// Hops are the sightings of the first request packet, in time order.
	Hops []Hop `json:"hops"`
	// ReplyHops are the sightings of the first reply.
	ReplyHops []Hop       `json:"reply_hops,omitempty"`
	Rewrites  []Rewrite   `json:"rewrites"`
	Packets   []PacketSum `json:"packets"`
	// Stop says where a packet that did not get through was last seen
	// and what the model says should have happened next.
	Stop *Stop `json:"stop,omitempty"`
	// Loss names the counters that moved where it stopped (a live
	// trace's counter snapshots; nil without them).
	Loss      *Loss       `json:"loss,omitempty"`
	Conntrack []CTMatch   `json:"conntrack,omitempty"`
	IPVS      []IPVSMatch `json:"ipvs,omitempty"`
	// Start is the first sighting (UTC; RFC 3339 in JSON).
	Start    time.Time `json:"start"`
	Duration int64     `json:"duration_us"`

	// seq orders flows by their first sighting (the JSON's order); port
	// is the one the client addressed at its first sighting.
	seq  int64
	port uint16
	// stall is where an answered flow that did not complete lost
	// segments (AttributeLosses).
	stall *lossSite
}

// Seq is the flow's place in the order of first sightings: flows end in
// another order than they start.
func (f *Flow) Seq() int64 { return f.seq }

// Backend is the task that served the flow.
type Backend struct {
	IP    string  `json:"ip"`
	Netns *string `json:"netns"`
	Node  string  `json:"node,omitempty"`
	Task  string  `json:"task,omitempty"`
	// VTEP is the node a remote real server lives on, when the source
	// has no model of that node.
	VTEP string `json:"vtep,omitempty"`
}

// Hop is one sighting of a packet.
type Hop struct {
	Node    string    `json:"node,omitempty"`
	Netns   string    `json:"netns"`
	Ifname  string    `json:"ifname"`
	Dir     string    `json:"dir"`
	Src     string    `json:"src"`
	Dst     string    `json:"dst"`
	TS      time.Time `json:"ts"`
	DeltaUS int64     `json:"delta_us"`
	// Encap describes the outer header of a VXLAN-encapsulated sighting,
	// or the ESP packet that carried it on the underlay.
	Encap string `json:"encap,omitempty"`
	// ESP is the ESP packet of a sighting on the underlay of an encrypted
	// overlay: SPI, sequence number, how it was matched, its SA.
	ESP *HopESP `json:"esp,omitempty"`
	// Frame is the packet's number in its file (replay) or in the
	// written pcapng (trace --pcap).
	Frame int    `json:"frame,omitempty"`
	File  string `json:"file,omitempty"`
}

// Rewrite is a change of addresses or ports between two hops, with what
// explains it.
type Rewrite struct {
	Node  string `json:"node,omitempty"`
	Netns string `json:"netns"`
	// Kind: dnat, ipvs, snat, masquerade, redirect, vxlan-encap,
	// vxlan-decap, esp-encrypt, esp-decrypt; un-dnat, un-ipvs, un-snat,
	// ... on replies.
	Kind      string `json:"kind"`
	Dir       string `json:"dir"` // request or reply
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	Rule      string `json:"rule,omitempty"`
	FWMark    uint32 `json:"fwmark,omitempty"`
	ToPort    int    `json:"to_port,omitempty"`
	Impl      string `json:"impl,omitempty"`
	Scheduler string `json:"scheduler,omitempty"`
	MarkRule  string `json:"mark_rule,omitempty"`
	// Seen says how the rewrite is known: packets (observed between two
	// hops), conntrack (the netns's entry shows it; REDIRECT is only
	// visible there) or model (the rules say so, nothing observed it).
	Seen string `json:"seen"`
	Note string `json:"note,omitempty"`
}

// PacketSum is one logical packet of a flow.
type PacketSum struct {
	Dir   string    `json:"dir"` // request or reply
	Flags string    `json:"flags"`
	Len   int       `json:"len"`
	IPID  uint16    `json:"ip_id"`
	Seq   uint32    `json:"seq,omitempty"`
	Ack   uint32    `json:"ack,omitempty"`
	TS    time.Time `json:"ts"`
	// LastSeen is the last hop that saw it, Sightings how many saw it.
	LastSeen  string `json:"last_seen"`
	Sightings int    `json:"sightings"`
	// Hops are its sightings (with --packets).
	Hops []Hop `json:"hops,omitempty"`
}

// Stop is where a flow stopped.
type Stop struct {
	Packet string `json:"packet"` // e.g. "request SYN"
	Node   string `json:"node,omitempty"`
	Netns  string `json:"netns"`
	Ifname string `json:"ifname"`
	Dir    string `json:"dir"`
	Reason string `json:"reason"`
	// Code is the model's break code where it stopped (filter-drop,
	// no-service, ...), when the model's path breaks there.
	Code     string   `json:"code,omitempty"`
	Expected []string `json:"expected,omitempty"`

	site *lossSite // for AttributeLosses
}

// CTMatch is a conntrack entry of the flow in one namespace.
type CTMatch struct {
	Node  string `json:"node,omitempty"`
	Netns string `json:"netns"`
	Orig  string `json:"orig"`
	Reply string `json:"reply"`
	State string `json:"state,omitempty"`
	Mark  uint32 `json:"mark,omitempty"`
}

// IPVSMatch is an IPVS connection entry of the flow.
type IPVSMatch struct {
	Node  string   `json:"node,omitempty"`
	Netns string   `json:"netns"`
	Entry IPVSConn `json:"entry"`
}

// PointStat is one capture point and what it saw.
type PointStat struct {
	Point
	Frames int    `json:"frames"`
	Drops  uint64 `json:"drops,omitempty"`
	Error  string `json:"error,omitempty"`
}

// ProbeResult is what a --probe connection got.
type ProbeResult struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Local  string `json:"local,omitempty"`
	Answer string `json:"answer,omitempty"`
	Error  string `json:"error,omitempty"`
}

// ProtoName names an IP protocol number.
func ProtoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	}
	return fmt.Sprint(p)
}

// FlagString renders TCP flags the way tcpdump users read them:
// SYN, SYN/ACK, PSH/ACK, FIN/ACK, RST, ACK.
func FlagString(proto, flags uint8) string {
	if proto != ProtoTCP {
		return "UDP"
	}
	var parts []string
	for _, f := range []struct {
		bit  uint8
		name string
	}{{FlagSYN, "SYN"}, {FlagFIN, "FIN"}, {FlagRST, "RST"}, {FlagPSH, "PSH"}, {FlagACK, "ACK"}} {
		if flags&f.bit != 0 {
			parts = append(parts, f.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "/")
}
