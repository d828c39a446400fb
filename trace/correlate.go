package trace

import (
	"cmp"
	"slices"
	"time"
)

// Key identifies one packet at every hop: what DNAT, IPVS masquerading,
// SNAT, REDIRECT and VXLAN leave unchanged. TCP: IPv4 ID, sequence and
// acknowledgement numbers, flags and payload; UDP: ID and payload.
type Key struct {
	Seq, Ack uint32
	Hash     uint64
	ID       uint16
	Len      uint16
	Proto    uint8
	Flags    uint8
}

// KeyOf returns a packet's key.
func KeyOf(p *Packet) Key {
	return Key{Seq: p.Seq, Ack: p.Ack, Hash: p.Hash, ID: p.ID, Len: p.Len, Proto: p.Proto, Flags: p.Flags}
}

// Tuple is a directed 5-tuple as observed at one hop.
type Tuple struct {
	Src, Dst     IP4
	SPort, DPort uint16
	Proto        uint8
}

// TupleOf returns the packet's directed tuple.
func TupleOf(p *Packet) Tuple {
	return Tuple{Src: p.Src, Dst: p.Dst, SPort: p.SPort, DPort: p.DPort, Proto: p.Proto}
}

// Reverse swaps the endpoints.
func (t Tuple) Reverse() Tuple {
	return Tuple{Src: t.Dst, Dst: t.Src, SPort: t.DPort, DPort: t.SPort, Proto: t.Proto}
}

// canon orders the endpoints so both directions share one value.
func (t Tuple) canon() Tuple {
	if cmpEnd(t.Src, t.SPort, t.Dst, t.DPort) > 0 {
		return t.Reverse()
	}
	return t
}

func cmpEnd(a IP4, ap uint16, b IP4, bp uint16) int {
	for i := range a {
		if a[i] != b[i] {
			return cmp.Compare(a[i], b[i])
		}
	}
	return cmp.Compare(ap, bp)
}

// Options tune correlation.
type Options struct {
	// Window is how far apart two sightings of one packet may be
	// (default 2 s): a key seen again later is another packet.
	Window time.Duration
	// UDPIdle splits a UDP 5-tuple into two flows after this much
	// silence (default 30 s, conntrack's UDP timeout).
	UDPIdle time.Duration
	// ServerPorts are the ports clients connect to (published and target
	// ports), to orient a flow whose first packet is not a SYN.
	ServerPorts []uint16
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = 2 * time.Second
	}
	if o.UDPIdle <= 0 {
		o.UDPIdle = 30 * time.Second
	}
	return o
}

// LPacket is one logical packet: every sighting of it, across hops, in
// time order.
type LPacket struct {
	Key    Key
	Frames []int32 // indices into the frame slice
	Reply  bool    // sent by the server side
	first  int64
	last   int64
	conn   int32
}

// First and Last are the times of the first and last sighting.
func (p *LPacket) First() int64 { return p.first }
func (p *LPacket) Last() int64  { return p.last }

// Conn is one connection: its packets in time order, the first forward
// packet and the first reply.
type Conn struct {
	Proto   uint8
	Packets []*LPacket
	// Request and Reply index the first forward packet and the first
	// reply in Packets (-1: none).
	Request, Reply int
	// Client is the first forward packet's tuple at its first sighting.
	Client Tuple
}

// Correlate groups frames into logical packets and packets into
// connections. frames are sorted in place by time; the result is ordered
// by each connection's first sighting. Pure: no I/O.
func Correlate(frames []Frame, o Options) []*Conn {
	o = o.withDefaults()
	if !slices.IsSortedFunc(frames, func(a, b Frame) int { return cmp.Compare(a.TS, b.TS) }) {
		slices.SortStableFunc(frames, func(a, b Frame) int { return cmp.Compare(a.TS, b.TS) })
	}
	pkts := groupPackets(frames, o.Window)
	conns := groupConns(frames, pkts, o)
	for _, c := range conns {
		orient(frames, c, o.ServerPorts)
	}
	return conns
}

// groupPackets assigns each frame to a logical packet by key. Among the
// recent packets with the same key (usually one; more when equal UDP
// datagrams with IP ID 0 cross at once) it takes the one that has not yet
// been seen at this point in this direction and whose last sighting
// shares the most of the frame's addresses and ports (NAT rewrites one
// side at a time); none: a new packet.
func groupPackets(frames []Frame, window time.Duration) []*LPacket {
	var pkts []*LPacket
	open := make(map[Key][]*LPacket, len(frames)/4+1)
	w := int64(window)
	for i := range frames {
		f := &frames[i]
		k := KeyOf(&f.Pkt)
		cands := open[k]
		var best *LPacket
		bestScore := -1
		live := cands[:0]
		for _, lp := range cands {
			if f.TS-lp.last > w {
				continue
			}
			live = append(live, lp)
			if holdsSame(frames, lp, f) {
				continue
			}
			if s := continuity(&frames[lp.Frames[len(lp.Frames)-1]].Pkt, &f.Pkt); s >= bestScore {
				best, bestScore = lp, s
			}
		}
		if best == nil {
			best = &LPacket{Key: k, first: f.TS, conn: -1}
			live = append(live, best)
			pkts = append(pkts, best)
		}
		open[k] = live
		best.Frames = append(best.Frames, int32(i))
		best.last = f.TS
	}
	return pkts
}

// holdsSame: a packet crosses a point once per direction (per interface
// of an `-i any` capture).
func holdsSame(frames []Frame, lp *LPacket, f *Frame) bool {
	for _, j := range lp.Frames {
		g := &frames[j]
		if g.Point == f.Point && g.Dir == f.Dir && g.Ifindex == f.Ifindex {
			return true
		}
	}
	return false
}

func continuity(a, b *Packet) int {
	s := 0
	if a.Src == b.Src {
		s += 2
	}
	if a.Dst == b.Dst {
		s += 2
	}
	if a.SPort == b.SPort {
		s++
	}
	if a.DPort == b.DPort {
		s++
	}
	return s
}

// connState is a connection being assembled.
type connState struct {
	parent int32
	synSeq uint32 // ISN of its first SYN, when seen
	hasSYN bool
	last   int64
	proto  uint8
}

// groupConns links packets that share a tuple at any hop (union-find):
// one packet seen before and after a NAT joins the two tuples into one
// connection. A SYN with a new ISN, or UDP after UDPIdle, starts a new
// connection on a tuple in use (port reuse).
func groupConns(frames []Frame, pkts []*LPacket, o Options) []*Conn {
	var cs []connState
	find := func(i int32) int32 {
		for cs[i].parent != i {
			cs[i].parent = cs[cs[i].parent].parent
			i = cs[i].parent
		}
		return i
	}
	byTuple := make(map[Tuple]int32, len(pkts)/2+1)
	var tuples []Tuple
	for _, lp := range pkts {
		tuples = tuples[:0]
		for _, fi := range lp.Frames {
			t := TupleOf(&frames[fi].Pkt).canon()
			if !slices.Contains(tuples, t) {
				tuples = append(tuples, t)
			}
		}
		syn := lp.Key.Proto == ProtoTCP && lp.Key.Flags&(FlagSYN|FlagACK) == FlagSYN
		root := int32(-1)
		for _, t := range tuples {
			c, ok := byTuple[t]
			if !ok {
				continue
			}
			c = find(c)
			st := &cs[c]
			if syn && st.hasSYN && st.synSeq != lp.Key.Seq {
				continue // a new connection reusing the tuple
			}
			if lp.Key.Proto == ProtoUDP && lp.first-st.last > int64(o.UDPIdle) {
				continue
			}
			switch {
			case root < 0:
				root = c
			case c != root:
				a, b := min(root, c), max(root, c)
				cs[b].parent = a
				cs[a].last = max(cs[a].last, cs[b].last)
				if !cs[a].hasSYN && cs[b].hasSYN {
					cs[a].hasSYN, cs[a].synSeq = true, cs[b].synSeq
				}
				root = a
			}
		}
		if root < 0 {
			root = int32(len(cs))
			cs = append(cs, connState{parent: root, proto: lp.Key.Proto})
		}
		st := &cs[root]
		if syn && !st.hasSYN {
			st.hasSYN, st.synSeq = true, lp.Key.Seq
		}
		st.last = max(st.last, lp.last)
		lp.conn = root
		for _, t := range tuples {
			byTuple[t] = root
		}
	}
	idx := make(map[int32]int, len(cs))
	var conns []*Conn
	for _, lp := range pkts {
		r := find(lp.conn)
		lp.conn = r
		i, ok := idx[r]
		if !ok {
			i = len(conns)
			idx[r] = i
			conns = append(conns, &Conn{Proto: lp.Key.Proto, Request: -1, Reply: -1})
		}
		conns[i].Packets = append(conns[i].Packets, lp)
	}
	return conns
}

// orient marks each packet of c as request or reply and picks the client.
func orient(frames []Frame, c *Conn, serverPorts []uint16) {
	p0 := c.Packets[0]
	f0 := &frames[p0.Frames[0]].Pkt
	reply := false
	switch {
	case p0.Key.Proto == ProtoTCP && p0.Key.Flags&(FlagSYN|FlagACK) == FlagSYN:
	case p0.Key.Proto == ProtoTCP && p0.Key.Flags&(FlagSYN|FlagACK) == FlagSYN|FlagACK:
		reply = true
	case slices.Contains(serverPorts, f0.DPort):
	case slices.Contains(serverPorts, f0.SPort):
		reply = true
	default:
		reply = f0.SPort < f0.DPort // the client's port is the ephemeral one
	}
	fwd := map[Tuple]bool{}
	learn := func(lp *LPacket) {
		for _, fi := range lp.Frames {
			t := TupleOf(&frames[fi].Pkt)
			if lp.Reply {
				t = t.Reverse()
			}
			fwd[t] = true
		}
	}
	p0.Reply = reply
	learn(p0)
	pending := c.Packets[1:]
	for len(pending) > 0 {
		var rest []*LPacket
		for _, lp := range pending {
			known := false
			for _, fi := range lp.Frames {
				t := TupleOf(&frames[fi].Pkt)
				if fwd[t] {
					lp.Reply, known = false, true
					break
				}
				if fwd[t.Reverse()] {
					lp.Reply, known = true, true
					break
				}
			}
			if known {
				learn(lp)
			} else {
				rest = append(rest, lp)
			}
		}
		if len(rest) == len(pending) { // nothing learnt: call them requests
			for _, lp := range rest {
				learn(lp)
			}
			break
		}
		pending = rest
	}
	for i, lp := range c.Packets {
		if !lp.Reply && c.Request < 0 {
			c.Request = i
		}
		if lp.Reply && c.Reply < 0 {
			c.Reply = i
		}
	}
	if c.Request >= 0 {
		c.Client = TupleOf(&frames[c.Packets[c.Request].Frames[0]].Pkt)
	} else {
		c.Client = TupleOf(&frames[c.Packets[c.Reply].Frames[0]].Pkt).Reverse()
	}
}
