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
	// silence (default 30 s, conntrack's UDP timeout); an unanswered UDP
	// flow ends after it.
	UDPIdle time.Duration
	// TCPIdle ends a TCP flow that has not closed after this much
	// silence (default 30 s).
	TCPIdle time.Duration
	// Linger is how long a closed flow (TCP: FIN both ways, or a RST;
	// UDP: the answer back where the request was first seen) waits for
	// the last sightings of its packets before it ends (default 1 s).
	Linger time.Duration
	// MaxLinger bounds how many closed flows wait (default 1024): past
	// it the one closed longest ends first.
	MaxLinger int
	// MaxOpen bounds the flows in flight (default 262144): past it the
	// one silent longest ends first. Memory stays bounded by the flows
	// in flight, whatever the length of the capture.
	MaxOpen int
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
	if o.TCPIdle <= 0 {
		o.TCPIdle = 30 * time.Second
	}
	if o.Linger <= 0 {
		o.Linger = time.Second
	}
	if o.MaxLinger <= 0 {
		o.MaxLinger = 1024
	}
	if o.MaxOpen <= 0 {
		o.MaxOpen = 1 << 18
	}
	return o
}

// LPacket is one logical packet: every sighting of it, across hops, in
// time order.
type LPacket struct {
	Key    Key
	Frames []Frame
	Reply  bool // sent by the server side
	first  int64
	last   int64
	conn   *Conn
	// same links the packets in flight with the same key (the
	// correlator's table holds the first).
	same *LPacket
	// behind: another packet with the key is first in the table.
	behind bool
	// tuple is the canonical tuple of the last sighting, linked already.
	tuple Tuple
	// buf holds the first sightings (a packet is mostly seen at a few
	// points), so that a packet is one allocation.
	buf [2]Frame
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

	// The correlator's state: creation order (of the first packet), time
	// of the last sighting, the canonical tuples it owns, its first SYN's
	// ISN, FINs and RST seen, whether it is closed (and since when),
	// finished or merged into another.
	seq      int64
	last     int64
	tuples   []Tuple
	tupBuf   [3]Tuple // tuples' first ones: a connection has a few
	hasSYN   bool
	synSeq   uint32
	fins     uint8
	finSeq   uint32
	rst      bool
	closed   bool
	finished bool
	merged   *Conn
	// ID is the flow number it was first reported under (0: not yet).
	id int
	// dirty: it changed since it was last reported in flight.
	dirty bool
	// orientedAt is how many sightings it had when last oriented (0:
	// never): a closed connection is oriented when it closes and again
	// when it ends only if sightings came in between.
	orientedAt int
}

// Seq is the connection's place in the order of first sightings.
func (c *Conn) Seq() int64 { return c.seq }

// Last is the time of its last sighting.
func (c *Conn) Last() int64 { return c.last }

// Correlator groups frames into logical packets and packets into
// connections as the frames come, in time order, and hands out each
// connection once it has ended: closed (TCP FIN both ways or a RST, or a
// UDP request answered) and then Linger quiet, or silent for the idle
// timeout, all measured
// in capture time. Its memory is that of the connections in flight.
type Correlator struct {
	o       Options
	open    map[Key]*LPacket // the packets in flight by key (linked by same)
	byTuple map[Tuple]*Conn
	live    []*Conn // in flight, in creation order (merged and finished ones are swept out)
	done    []*Conn // ended, oriented, not yet taken
	gone    []int   // IDs of reported connections merged into another
	now     int64
	seq     int64
	sweepAt int64
	closedN int
	lastLP  *LPacket // the packet of the last frame
	// completed counts the connections that closed complete (TCP: SYN,
	// then FIN both ways or a RST; UDP: request and answer).
	completed int
}

// Completed is how many connections closed complete so far (they end a
// little later, when their last sightings are in).
func (c *Correlator) Completed() int { return c.completed }

// NewCorrelator returns an empty correlator.
func NewCorrelator(o Options) *Correlator {
	o = o.withDefaults()
	return &Correlator{o: o, open: map[Key]*LPacket{}, byTuple: map[Tuple]*Conn{}}
}

// Now is the capture time the correlator has reached.
func (c *Correlator) Now() int64 { return c.now }

// Correlate groups frames into logical packets and packets into
// connections (all of them, ended or not): the batch form of Correlator.
// frames are sorted in place by time; the result is ordered by each
// connection's first sighting. Pure: no I/O.
func Correlate(frames []Frame, o Options) []*Conn {
	if !slices.IsSortedFunc(frames, func(a, b Frame) int { return cmp.Compare(a.TS, b.TS) }) {
		slices.SortStableFunc(frames, func(a, b Frame) int { return cmp.Compare(a.TS, b.TS) })
	}
	cr := NewCorrelator(o)
	var out []*Conn
	for i := range frames {
		cr.Add(&frames[i])
		out = append(out, cr.Take()...)
	}
	cr.Flush()
	out = append(out, cr.Take()...)
	slices.SortFunc(out, func(a, b *Conn) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// Add files one frame (copied). Frames come in time order; a frame a
// little out of order is placed among its packet's sightings by time.
func (c *Correlator) Add(f *Frame) {
	if f.TS > c.now {
		c.now = f.TS
	}
	k := KeyOf(&f.Pkt)
	// A packet's sightings mostly come one after the other: the last
	// packet is the one, unless another has its key.
	var head *LPacket
	if l := c.lastLP; l != nil && l.Key == k && l.same == nil && !l.behind && l.conn != nil && !l.conn.finished {
		head = l
	} else {
		head = c.open[k]
	}
	var best *LPacket
	bestScore := -1
	w := int64(c.o.Window)
	for lp := head; lp != nil; lp = lp.same {
		if f.TS-lp.last > w || holdsSame(lp, f) {
			continue
		}
		if s := continuity(&lp.Frames[len(lp.Frames)-1].Pkt, &f.Pkt); s >= bestScore {
			best, bestScore = lp, s
		}
	}
	if best == nil {
		best = &LPacket{Key: k, first: f.TS, last: f.TS}
		best.Frames = best.buf[:0]
		if head == nil {
			c.open[k] = best
		} else { // at the end: the candidates stay in the order they came
			last := head
			for last.same != nil {
				last = last.same
			}
			last.same = best
			best.behind = true
		}
	}
	if len(best.Frames) == cap(best.Frames) {
		// past the first two, a packet is seen at a dozen points or so
		grown := make([]Frame, len(best.Frames), max(16, 2*cap(best.Frames)))
		copy(grown, best.Frames)
		best.Frames = grown
	}
	best.Frames = append(best.Frames, *f)
	c.lastLP = best
	if n := len(best.Frames); n > 1 && f.TS < best.Frames[n-2].TS {
		slices.SortStableFunc(best.Frames, func(a, b Frame) int { return cmp.Compare(a.TS, b.TS) })
	}
	best.first, best.last = min(best.first, f.TS), max(best.last, f.TS)
	c.link(best, f)
	if c.now >= c.sweepAt {
		c.sweep()
	}
}

// link ties the frame's tuple to its packet's connection: a new packet
// joins the connection of its tuple (or starts one), a packet seen before
// and after a NAT joins the two tuples' connections into one. A SYN with
// a new ISN, or UDP after UDPIdle, starts a new connection on a tuple in
// use (port reuse).
func (c *Correlator) link(lp *LPacket, f *Frame) {
	t := TupleOf(&f.Pkt).canon()
	if lp.conn != nil && t == lp.tuple && len(lp.Frames) > 1 {
		// seen at the previous hop with these addresses: linked then
		c.touch(lp, f)
		return
	}
	lp.tuple = t
	other := c.byTuple[t]
	switch {
	case lp.conn == nil:
		if other != nil && c.compatible(other, lp) {
			c.attach(other, lp)
		} else {
			nc := &Conn{Proto: lp.Key.Proto, Request: -1, Reply: -1, seq: c.seq}
			nc.tuples = nc.tupBuf[:0]
			c.seq++
			c.live = append(c.live, nc)
			c.attach(nc, lp)
		}
		if other != lp.conn {
			c.own(lp.conn, t)
		}
	case other == nil:
		c.own(lp.conn, t)
	case other != lp.conn:
		switch {
		case answeredUDP(lp.conn) || answeredUDP(other):
			// a late sighting of an answered exchange's packet, on a
			// tuple a new exchange uses now: the two stay apart
		case c.compatible(other, lp):
			c.merge(lp.conn, other)
		default:
			c.own(lp.conn, t)
		}
	}
	c.touch(lp, f)
}

// answeredUDP: a UDP exchange whose answer is back. It lingers for the late
// sightings of its packets; a new datagram on its tuple starts the next
// exchange.
func answeredUDP(cn *Conn) bool { return cn.Proto == ProtoUDP && cn.closed }

// touch notes a sighting on the packet's connection: its time, and an
// answer that closes a UDP exchange.
func (c *Correlator) touch(lp *LPacket, f *Frame) {
	cn := lp.conn
	cn.last = max(cn.last, f.TS)
	cn.dirty = true
	if !cn.closed && cn.Proto == ProtoUDP && lp != cn.Packets[0] {
		p0 := &cn.Packets[0].Frames[0]
		if f.Point == p0.Point && TupleOf(&f.Pkt) == TupleOf(&p0.Pkt).Reverse() {
			// The answer is back where the request was first seen. The
			// exchange lingers like a closed TCP flow (sweep ends it):
			// a sighting a socket hands over late still joins it.
			cn.closed = true
			c.closedN++
			orient(cn, c.o.ServerPorts)
			if complete(cn) {
				c.completed++
			}
		}
	}
}

func (c *Correlator) compatible(cn *Conn, lp *LPacket) bool {
	if isSYN(lp.Key) && cn.hasSYN && cn.synSeq != lp.Key.Seq {
		return false // a new connection reusing the tuple
	}
	if answeredUDP(cn) {
		return false // the next exchange on the tuple
	}
	return lp.Key.Proto != ProtoUDP || lp.first-cn.last <= int64(c.o.UDPIdle)
}

func isSYN(k Key) bool { return k.Proto == ProtoTCP && k.Flags&(FlagSYN|FlagACK) == FlagSYN }

// own maps a canonical tuple to cn.
func (c *Correlator) own(cn *Conn, t Tuple) {
	c.byTuple[t] = cn
	if !slices.Contains(cn.tuples, t) {
		cn.tuples = append(cn.tuples, t)
	}
}

// attach adds a new packet to a connection and notes its SYN, FIN, RST.
func (c *Correlator) attach(cn *Conn, lp *LPacket) {
	lp.conn = cn
	cn.Packets = append(cn.Packets, lp)
	if isSYN(lp.Key) && !cn.hasSYN {
		cn.hasSYN, cn.synSeq = true, lp.Key.Seq
	}
	c.noteEnd(cn, lp.Key)
}

// merge moves b's packets and tuples into a; the connection seen first
// keeps its place.
func (c *Correlator) merge(a, b *Conn) {
	if b.seq < a.seq {
		a, b = b, a
	}
	a.Packets = mergeByFirst(a.Packets, b.Packets)
	for _, lp := range b.Packets {
		lp.conn = a
	}
	for _, t := range b.tuples {
		c.own(a, t)
	}
	a.last = max(a.last, b.last)
	if !a.hasSYN && b.hasSYN {
		a.hasSYN, a.synSeq = true, b.synSeq
	}
	for _, lp := range b.Packets {
		c.noteEnd(a, lp.Key)
	}
	if b.closed {
		c.closedN--
	}
	if b.id != 0 {
		if a.id == 0 {
			a.id = b.id
		} else {
			c.gone = append(c.gone, b.id)
		}
	}
	b.merged, b.Packets, b.tuples = a, nil, nil
	a.dirty = true
}

// noteEnd notes a TCP packet's FIN or RST; FINs from both sides, or a
// RST, close the connection.
func (c *Correlator) noteEnd(cn *Conn, k Key) {
	if k.Proto != ProtoTCP {
		return
	}
	if k.Flags&FlagRST != 0 {
		cn.rst = true
	}
	if k.Flags&FlagFIN != 0 {
		// A FIN from the other side has the other side's sequence
		// numbers; a retransmitted one has the same.
		switch {
		case cn.fins == 0:
			cn.fins, cn.finSeq = 1, k.Seq
		case k.Seq != cn.finSeq:
			cn.fins = 2
		}
	}
	if !cn.closed && (cn.rst || cn.fins == 2) {
		cn.closed = true
		c.closedN++
		c.orient(cn)
		if complete(cn) {
			c.completed++
		}
	}
}

func mergeByFirst(a, b []*LPacket) []*LPacket {
	out := make([]*LPacket, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].first < a[0].first {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// Advance moves capture time on without a frame (a live capture that is
// quiet), so silent connections end.
func (c *Correlator) Advance(now int64) {
	if now > c.now {
		c.now = now
	}
	if c.now >= c.sweepAt {
		c.sweep()
	}
}

// sweep ends the connections that are due, and the longest-waiting ones
// past the bounds.
func (c *Correlator) sweep() {
	c.sweepAt = c.now + int64(50*time.Millisecond)
	linger, udpIdle, tcpIdle := int64(c.o.Linger), int64(c.o.UDPIdle), int64(c.o.TCPIdle)
	keep := c.live[:0]
	for _, cn := range c.live {
		if cn.finished || cn.merged != nil {
			continue
		}
		quiet := c.now - cn.last
		switch {
		case cn.closed && quiet >= linger,
			!cn.closed && cn.Proto == ProtoUDP && quiet >= udpIdle,
			!cn.closed && cn.Proto != ProtoUDP && quiet >= tcpIdle:
			c.finish(cn)
			continue
		}
		keep = append(keep, cn)
	}
	clear(c.live[len(keep):])
	c.live = keep
	if c.closedN > c.o.MaxLinger {
		c.evict(c.closedN-c.o.MaxLinger, func(cn *Conn) bool { return cn.closed })
	}
	if len(c.live) > c.o.MaxOpen {
		c.evict(len(c.live)-c.o.MaxOpen, func(*Conn) bool { return true })
	}
}

// evict ends n connections (of those sel selects), the first seen first
// (the live list is in that order: about the silent longest).
func (c *Correlator) evict(n int, sel func(*Conn) bool) {
	for _, cn := range c.live {
		if n == 0 {
			break
		}
		if !cn.finished && cn.merged == nil && sel(cn) {
			c.finish(cn)
			n--
		}
	}
	keep := c.live[:0]
	for _, cn := range c.live {
		if !cn.finished {
			keep = append(keep, cn)
		}
	}
	clear(c.live[len(keep):])
	c.live = keep
}

// Flush ends every connection in flight (the capture is over).
func (c *Correlator) Flush() {
	for _, cn := range c.live {
		if !cn.finished && cn.merged == nil {
			c.finish(cn)
		}
	}
	c.live = c.live[:0]
}

// finish hands a connection out: its packets leave the tables, it is
// oriented and queued for Take.
func (c *Correlator) finish(cn *Conn) {
	if cn.finished || cn.merged != nil {
		return
	}
	cn.finished = true
	if cn.closed {
		c.closedN--
	}
	for _, lp := range cn.Packets {
		switch head := c.open[lp.Key]; {
		case head == lp && lp.same == nil:
			delete(c.open, lp.Key)
		case head == lp:
			c.open[lp.Key] = lp.same
			lp.same.behind = false
		case head != nil:
			for p := head; p.same != nil; p = p.same {
				if p.same == lp {
					p.same = lp.same
					break
				}
			}
		}
		lp.same = nil
	}
	for _, t := range cn.tuples {
		if c.byTuple[t] == cn {
			delete(c.byTuple, t)
		}
	}
	cn.tuples = nil
	c.orient(cn)
	c.done = append(c.done, cn)
}

// Take returns the connections that ended since the last call, in the
// order they ended.
func (c *Correlator) Take() []*Conn {
	out := c.done
	c.done = nil
	return out
}

// Gone returns the IDs of reported connections that turned out to be part
// of another (their packets are now the other's), since the last call.
func (c *Correlator) Gone() []int {
	out := c.gone
	c.gone = nil
	return out
}

// InFlight returns the connections in flight that changed since the last
// call, oriented as far as they are seen (for a live view).
func (c *Correlator) InFlight() []*Conn {
	var out []*Conn
	for _, cn := range c.live {
		if cn.finished || cn.merged != nil || !cn.dirty {
			continue
		}
		cn.dirty = false
		c.orient(cn)
		out = append(out, cn)
	}
	return out
}

// holdsSame: a packet crosses a point once per direction (per interface
// of an `-i any` capture).
func holdsSame(lp *LPacket, f *Frame) bool {
	for i := range lp.Frames {
		g := &lp.Frames[i]
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

// orient orients cn unless it is oriented already and has had no
// sighting since (packets and their sightings only grow).
func (c *Correlator) orient(cn *Conn) {
	n := 0
	for _, lp := range cn.Packets {
		n += len(lp.Frames)
	}
	if n == cn.orientedAt {
		return
	}
	orient(cn, c.o.ServerPorts)
	cn.orientedAt = n
}

// orient marks each packet of c as request or reply and picks the client.
func orient(c *Conn, serverPorts []uint16) {
	c.Request, c.Reply = -1, -1
	p0 := c.Packets[0]
	f0 := &p0.Frames[0].Pkt
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
	// The forward tuples learnt so far: a connection has a few (one per
	// NAT), so a slice.
	var fwd []Tuple
	learn := func(lp *LPacket) {
		var prev Tuple
		for i := range lp.Frames {
			t := TupleOf(&lp.Frames[i].Pkt)
			if i > 0 && t == prev { // the hops between two NATs
				continue
			}
			prev = t
			if lp.Reply {
				t = t.Reverse()
			}
			if !slices.Contains(fwd, t) {
				fwd = append(fwd, t)
			}
		}
	}
	p0.Reply = reply
	learn(p0)
	pending := c.Packets[1:]
	for len(pending) > 0 {
		var rest []*LPacket
		for _, lp := range pending {
			known := false
			for i := range lp.Frames {
				t := TupleOf(&lp.Frames[i].Pkt)
				if slices.Contains(fwd, t) {
					lp.Reply, known = false, true
					break
				}
				if slices.Contains(fwd, t.Reverse()) {
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
				lp.Reply = false
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
		c.Client = TupleOf(&c.Packets[c.Request].Frames[0].Pkt)
	} else {
		c.Client = TupleOf(&c.Packets[c.Reply].Frames[0].Pkt).Reverse()
	}
}

// addSighting adds a sighting that does not come through Add (an ESP
// packet tied to lp by esp.go) to a packet in flight; false when its
// connection has ended already.
func (c *Correlator) addSighting(lp *LPacket, f *Frame) bool {
	cn := lp.conn
	if cn == nil || cn.finished || cn.merged != nil {
		return false
	}
	if len(lp.Frames) == cap(lp.Frames) {
		grown := make([]Frame, len(lp.Frames), max(16, 2*cap(lp.Frames)))
		copy(grown, lp.Frames)
		lp.Frames = grown
	}
	lp.Frames = append(lp.Frames, *f)
	if n := len(lp.Frames); n > 1 && f.TS < lp.Frames[n-2].TS {
		slices.SortStableFunc(lp.Frames, func(a, b Frame) int { return cmp.Compare(a.TS, b.TS) })
	}
	lp.first, lp.last = min(lp.first, f.TS), max(lp.last, f.TS)
	cn.last = max(cn.last, f.TS)
	cn.dirty = true
	return true
}
