package trace

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/meshtrace/meshtrace/topology"
)

// Analysis turns correlated connections into flows: hops, rewrites and
// their explanation from the model, conntrack and IPVS matches, and where
// a flow stopped.
type Analysis struct {
	Env    *Env // nil: replay without a source
	Points []Point
	Routes []Route
	// Conntrack and IPVS hold entries read after the capture, keyed by
	// nsKey(node, netns).
	Conntrack map[string][]topology.Conntrack
	IPVS      map[string][]IPVSConn
	// PacketHops lists every packet's sightings in Flow.Packets (the
	// first request's and reply's are always in Hops and ReplyHops).
	PacketHops bool

	labels []string // Points' labels, made once, and with each direction
	dirs   [][3]string
}

// label is a point's Label against the primary node.
func (a *Analysis) label(p int32) string {
	if len(a.labels) != len(a.Points) {
		a.labels, a.dirs = a.labels[:0], a.dirs[:0]
		for _, pt := range a.Points {
			l := pt.Label(a.Env.Primary())
			a.labels = append(a.labels, l)
			a.dirs = append(a.dirs, [3]string{l + " " + DirUnknown.String(), l + " " + DirIn.String(), l + " " + DirOut.String()})
		}
	}
	return a.labels[p]
}

// labelDir is "label dir" (a packet's last sighting).
func (a *Analysis) labelDir(p int32, d Dir) string {
	a.label(p)
	if d > DirOut {
		return a.labels[p] + " " + d.String()
	}
	return a.dirs[p][d]
}

// NsKey keys a namespace of a node in Analysis.Conntrack and IPVS.
func NsKey(node, netns string) string { return node + "/" + netns }

func nsKey(node, netns string) string { return NsKey(node, netns) }

// Flows renders every connection, numbered from 1 in the order given.
func (a *Analysis) Flows(conns []*Conn) []Flow {
	out := make([]Flow, 0, len(conns))
	for i, c := range conns {
		out = append(out, a.Flow(i+1, c, true))
	}
	return out
}

// Flow renders one connection as flow number id. ended says it is over:
// an unanswered flow that is still in flight has no Stop yet.
func (a *Analysis) Flow(id int, c *Conn, ended bool) Flow {
	fl := Flow{ID: id, Proto: ProtoName(c.Proto), Rewrites: []Rewrite{}, Hops: []Hop{}, seq: c.seq, port: c.Client.DPort}
	fl.Client = endpoint(c.Client.Src, c.Client.SPort)
	fl.Server = endpoint(c.Client.Dst, c.Client.DPort)
	first, last := c.Packets[0].first, c.Packets[0].last
	for _, lp := range c.Packets {
		fl.Packets = append(fl.Packets, a.packetSum(lp))
		last = max(last, lp.last)
	}
	fl.Start = tsTime(first)
	fl.Duration = (last - first) / 1000
	var req, rep *LPacket
	if c.Request >= 0 {
		req = c.Packets[c.Request]
		fl.Hops = a.hops(req)
	}
	if c.Reply >= 0 {
		rep = c.Packets[c.Reply]
		fl.ReplyHops = a.hops(rep)
	}
	fl.Backend = a.backend(c, req, rep)
	var done map[string]Rewrite // made when a request is rewritten
	if req != nil {
		var rw []Rewrite
		rw, done = a.rewrites(req, false, done)
		fl.Rewrites = append(fl.Rewrites, rw...)
	}
	if rep != nil {
		rw, _ := a.rewrites(rep, true, done)
		fl.Rewrites = append(fl.Rewrites, rw...)
	}
	fl.Conntrack = a.conntrackFor(c)
	fl.IPVS = a.ipvsFor(c)
	if req != nil {
		fl.Rewrites = append(fl.Rewrites, a.unseenRedirect(req, fl.Rewrites, fl.Conntrack)...)
		if a.Env != nil {
			if rw, client, server := a.unseenLocalNAT(req, fl.Conntrack); len(rw) > 0 {
				fl.Rewrites = append(rw, fl.Rewrites...)
				fl.Client, fl.Server = client, server
			}
		}
	}
	fl.Complete = complete(c)
	fl.Midstream = midstream(c)
	fl.Answered = a.answered(c)
	if !fl.Answered && ended && !(fl.Midstream && bareACKs(c)) {
		fl.Stop = a.stop(c, fl.Backend)
	}
	if fl.Answered && !fl.Complete && ended {
		fl.stall = a.stalled(c, fl.Backend)
	}
	return fl
}

func endpoint(a IP4, port uint16) string {
	return netip.AddrPortFrom(a.Addr(), port).String()
}

func tsTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// hops renders a packet's sightings with the delta from the previous one.
func (a *Analysis) hops(lp *LPacket) []Hop {
	hs := make([]Hop, 0, len(lp.Frames))
	prev := lp.first
	for i := range lp.Frames {
		f := &lp.Frames[i]
		p := a.Points[f.Point]
		h := Hop{
			Node: p.Node, Netns: p.Netns, Ifname: p.Ifname, Dir: f.Dir.String(),
			Src: endpoint(f.Pkt.Src, f.Pkt.SPort), Dst: endpoint(f.Pkt.Dst, f.Pkt.DPort),
			TS: tsTime(f.TS), DeltaUS: (f.TS - prev) / 1000, File: p.File, Frame: int(f.Num),
		}
		if f.VXLAN {
			h.Encap = fmt.Sprintf("vxlan %s -> %s vni %d",
				endpoint(f.Outer.Src, f.Outer.SPort), endpoint(f.Outer.Dst, f.Outer.DPort), f.Outer.VNI)
		}
		if f.IsESP() {
			h.ESP, h.Encap = a.hopESP(f)
		}
		prev = f.TS
		hs = append(hs, h)
	}
	return hs
}

func (a *Analysis) packetSum(lp *LPacket) PacketSum {
	f0 := &lp.Frames[0]
	ps := PacketSum{Dir: "request", Flags: FlagString(lp.Key.Proto, lp.Key.Flags), Len: int(lp.Key.Len),
		IPID: lp.Key.ID, Seq: lp.Key.Seq, Ack: lp.Key.Ack, TS: tsTime(f0.TS), Sightings: len(lp.Frames)}
	if a.PacketHops {
		ps.Hops = a.hops(lp)
	}
	if lp.Reply {
		ps.Dir = "reply"
	}
	lf := &lp.Frames[len(lp.Frames)-1]
	ps.LastSeen = a.labelDir(lf.Point, lf.Dir)
	return ps
}

// backend is the address that answered (the first reply's source), or the
// request's last destination, resolved to its namespace and node.
func (a *Analysis) backend(c *Conn, req, rep *LPacket) *Backend {
	var ip IP4
	var at *Frame
	switch {
	case rep != nil:
		at = &rep.Frames[0]
		ip = at.Pkt.Src
	case req != nil:
		at = &req.Frames[len(req.Frames)-1]
		ip = at.Pkt.Dst
	default:
		return nil
	}
	b := &Backend{IP: ip.String()}
	if a.Env == nil {
		if p := a.Points[at.Point]; p.Netns != "" {
			n := p.Netns
			b.Netns, b.Node = &n, p.Node
		}
		return b
	}
	node, ns := a.Env.Owner(ip.Addr())
	if ns == nil || ns.Role != topology.RoleTask {
		// Not a task of a node we know: a real server on another node
		// (say which VTEP), or not a backend at all.
		rb, ok := a.Env.remoteBackend(ip.Addr())
		if !ok {
			return nil
		}
		b.Task = rb.Task
		if rb.VTEP.IsValid() {
			b.VTEP = rb.VTEP.String()
			if n := a.Env.NodeByAddr(rb.VTEP); n != nil {
				b.Node = n.Name
			}
		}
		return b
	}
	name := ns.Name
	b.Netns, b.Node = &name, node.Name
	if ns.Docker != nil {
		b.Task = ns.Docker.Task
	}
	return b
}

// complete: TCP saw the SYN and FIN both ways or a RST; UDP saw a reply.
func complete(c *Conn) bool {
	if c.Proto == ProtoUDP {
		return c.Request >= 0 && c.Reply >= 0
	}
	var syn, finReq, finRep, rst bool
	for _, lp := range c.Packets {
		f := lp.Key.Flags
		syn = syn || (f&FlagSYN != 0 && !lp.Reply)
		rst = rst || f&FlagRST != 0
		if f&FlagFIN != 0 {
			if lp.Reply {
				finRep = true
			} else {
				finReq = true
			}
		}
	}
	return syn && (rst || (finReq && finRep))
}

// midstream: a TCP connection whose SYN is not in the capture, either way;
// a UDP exchange whose request is not (only its answer was seen: the
// request went out before the capture began).
func midstream(c *Conn) bool {
	if c.Proto == ProtoUDP {
		return c.Request < 0 && c.Reply >= 0
	}
	if c.Proto != ProtoTCP {
		return false
	}
	for _, lp := range c.Packets {
		if lp.Key.Flags&FlagSYN != 0 {
			return false
		}
	}
	return true
}

// bareACKs: every packet is an ACK without data, FIN or RST, such as the
// last ACK of a connection closing as the capture starts: nothing in it
// waits for an answer, so its silence is no stop.
func bareACKs(c *Conn) bool {
	for _, lp := range c.Packets {
		if lp.Key.Len > 0 || lp.Key.Flags&(FlagFIN|FlagRST|FlagSYN) != 0 {
			return false
		}
	}
	return true
}

// answered: a reply that accepts the flow (SYN/ACK, or any UDP reply)
// reached the point where the request was first seen.
func (a *Analysis) answered(c *Conn) bool {
	if c.Request < 0 {
		return c.Reply >= 0
	}
	firstPt := c.Packets[c.Request].Frames[0].Point
	for _, lp := range c.Packets {
		if !lp.Reply {
			continue
		}
		if c.Proto == ProtoTCP && lp.Key.Flags&(FlagSYN|FlagACK) != FlagSYN|FlagACK {
			continue
		}
		if seenAt(lp, firstPt) {
			return true
		}
	}
	// A connection already established before the capture: data replies
	// reaching the first point count.
	if c.Proto == ProtoTCP && !slices.ContainsFunc(c.Packets, func(lp *LPacket) bool { return lp.Key.Flags&FlagSYN != 0 }) {
		for _, lp := range c.Packets {
			if lp.Reply && lp.Key.Flags&FlagRST == 0 && seenAt(lp, firstPt) {
				return true
			}
		}
	}
	return false
}

func seenAt(lp *LPacket, point int32) bool {
	for i := range lp.Frames {
		if lp.Frames[i].Point == point {
			return true
		}
	}
	return false
}
