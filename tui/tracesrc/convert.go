// Package tracesrc adapts package trace to the TUI: it converts trace's
// flows to the TUI's own (tui/flows), and runs live traces (trace.Run)
// while sending snapshots of the connections seen so far.
package tracesrc

import (
	"fmt"
	"time"

	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/tui/flows"
)

// FromResult converts a trace or replay result. primary is the node the
// TUI draws: its sightings get an empty Node, like the path's
// namespaces. When it is "" (a replay against an unnamed source) it is
// the node where the first request entered the host namespace.
func FromResult(res *trace.Result, primary string) []flows.Conn {
	if res == nil {
		return nil
	}
	if primary == "" {
		primary = entryNode(res)
	}
	out := make([]flows.Conn, 0, len(res.Flows))
	for _, f := range res.Flows {
		out = append(out, FromFlow(f, primary))
	}
	return out
}

// FromFlow converts one flow.
func FromFlow(f trace.Flow, primary string) flows.Conn {
	node := func(n string) string {
		if n == primary {
			return ""
		}
		return n
	}
	c := flows.Conn{
		ID: f.ID, Proto: f.Proto, Client: f.Client, Server: f.Server,
		Answered: f.Answered, Complete: f.Complete, Start: ts(f.Start),
		Hops: sightings(f.Hops, node), ReplyHops: sightings(f.ReplyHops, node),
	}
	if b := f.Backend; b != nil {
		c.Backend, c.BackendNode, c.Task = b.IP, node(b.Node), b.Task
		if b.Netns != nil {
			c.BackendNetns = *b.Netns
		}
	}
	for _, r := range f.Rewrites {
		note := r.Note
		if r.Kind == "ipvs" && r.FWMark != 0 {
			note = fmt.Sprintf("FWM %d %s %s", r.FWMark, r.Scheduler, note)
		}
		c.Rewrites = append(c.Rewrites, flows.Rewrite{Node: node(r.Node), Netns: r.Netns, Kind: r.Kind, Dir: r.Dir,
			From: r.From, To: r.To, Rule: r.Rule, Seen: r.Seen, Note: note})
	}
	for _, p := range f.Packets {
		c.Packets = append(c.Packets, flows.Packet{Dir: p.Dir, Flags: p.Flags, Len: p.Len, TS: ts(p.TS), Hops: sightings(p.Hops, node)})
	}
	if s := f.Stop; s != nil {
		c.Lost = &flows.Lost{Packet: s.Packet, Node: node(s.Node), Netns: s.Netns, Ifname: s.Ifname, Reason: s.Reason, Expected: s.Expected}
	}
	return c
}

func sightings(hs []trace.Hop, node func(string) string) []flows.Sighting {
	out := make([]flows.Sighting, 0, len(hs))
	for _, h := range hs {
		out = append(out, flows.Sighting{Node: node(h.Node), Netns: h.Netns, Ifname: h.Ifname, Dir: h.Dir,
			Src: h.Src, Dst: h.Dst, TS: ts(h.TS), Encap: h.Encap, Frame: h.Frame})
	}
	return out
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// entryNode is the node of the first "host" sighting of the first flow.
func entryNode(res *trace.Result) string {
	for _, f := range res.Flows {
		for _, h := range f.Hops {
			if h.Netns == "host" {
				return h.Node
			}
		}
	}
	return ""
}
