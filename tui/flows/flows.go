// Package flows is the TUI's own, small picture of traced connections: what
// the trace and replay views draw. It does not depend on package trace;
// tui/tracesrc adapts trace's results (and its live capture) to it, so the
// views are tested with hand-made flows.
package flows

import (
	"context"
	"time"

	"github.com/meshtrace/meshtrace/topology"
)

// Sighting is one packet seen at one capture point.
type Sighting struct {
	Node   string
	Netns  string
	Ifname string
	Dir    string // in, out
	Src    string // addr:port as seen there
	Dst    string
	TS     time.Time
	// Encap describes the outer header of a VXLAN sighting.
	Encap string
	// Frame is the packet's number in its capture file, 0 when unknown.
	Frame int
}

// Where is "netns/ifname" (with the node when set).
func (s Sighting) Where() string {
	w := s.Netns + "/" + s.Ifname
	if s.Node != "" {
		w = s.Node + "/" + w
	}
	return w
}

// Rewrite is an address or port change between two sightings and what
// explains it.
type Rewrite struct {
	Node  string
	Netns string
	// Kind: dnat, ipvs, snat, masquerade, redirect, vxlan-encap, ...;
	// un-* on replies.
	Kind string
	Dir  string // request, reply
	From string
	To   string
	Rule string
	// Seen: packets, conntrack or model.
	Seen string
	Note string
}

// Packet is one logical packet of a connection with its sightings.
type Packet struct {
	Dir   string // request, reply
	Flags string // SYN, SYN/ACK, ...
	Len   int
	TS    time.Time
	Hops  []Sighting
}

// Lost says where a packet that did not get through was last seen.
type Lost struct {
	Packet   string // e.g. "request SYN"
	Node     string
	Netns    string
	Ifname   string
	Reason   string
	Expected []string
}

// Conn is one traced connection (TCP) or exchange (UDP).
type Conn struct {
	ID     int
	Proto  string
	Client string
	Server string
	// Backend is the address that served it, "" when none did; Netns,
	// Node and Task say where it lives when known.
	Backend      string
	BackendNetns string
	BackendNode  string
	Task         string
	Answered     bool
	Complete     bool
	// Hops are the sightings of the first request packet, ReplyHops of
	// the first reply.
	Hops      []Sighting
	ReplyHops []Sighting
	Rewrites  []Rewrite
	Packets   []Packet
	Lost      *Lost
	Start     time.Time
}

// Update is one step of a live trace: the connections so far.
type Update struct {
	Conns  []Conn
	Frames int
	// Ready says the capture is listening: traffic from now on is seen.
	Ready bool
	// Done is set on the last update; Err when the trace failed.
	Done  bool
	Err   error
	Notes []string
}

// Request asks for a live trace of a published port.
type Request struct {
	Query topology.Query
	// Probe makes the traffic (Count connections).
	Probe bool
	Count int
}

// Tracer starts live traces. Start must not block: it returns a channel
// that carries updates and is closed after the one with Done set.
// Cancelling ctx stops the trace.
type Tracer interface {
	Start(ctx context.Context, r Request) (<-chan Update, error)
}
