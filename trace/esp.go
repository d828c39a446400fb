package trace

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/meshtrace/meshtrace/topology"
)

// ESP on the underlay of an encrypted overlay.
//
// Docker encrypts an overlay's VXLAN in xfrm transport mode (moby,
// libnetwork/drivers/overlay/encryption.go): on the underlay a VXLAN
// datagram is IP(A -> B, protocol 50) | ESP(SPI, seq) | IV | ciphertext
// (UDP 4789 + VXLAN + the inner frame + padding + pad length + next
// header) | ICV. AF_PACKET on the vxlan device (in the overlay's netns)
// sees the inner frame in clear; on the underlay only ESP. So an ESP
// packet is tied to its inner packet by what can be known without a key:
//
//   - the SA: its SPI names an SA of the source's xfrm states (A -> B),
//     whose algorithm gives the IV, padding and ICV sizes;
//   - the length: the ESP payload's length is an exact function of the
//     VXLAN datagram's (espPayloadLen);
//   - time and order: node A's vxlan device sent the inner frame just
//     before (toward B's VTEP), and per SA the kernel encrypts in order;
//     on B the inner frame leaves B's vxlan device just after;
//   - the same packet on both underlays has the same (SPI, seq): exact.
//
// What cannot be told apart is said so (ambiguous), never guessed.

// ProtoESP is IP protocol 50.
const ProtoESP = 50

// ESP is the header of an ESP packet (RFC 4303): the SPI names the SA,
// Seq is its sequence number. Match says how an ESP sighting was tied
// to its inner packet (0 on a freshly decoded frame).
type ESP struct {
	SPI, Seq uint32
	Match    ESPMatch
}

// ESPMatch is how an ESP sighting was tied to the inner packet.
type ESPMatch uint8

const (
	espUnmatched ESPMatch = iota
	// MatchSPISeq: the same (SPI, seq) was matched on the other node's
	// underlay: it is the same packet.
	MatchSPISeq
	// MatchLength: the only inner frame within the window whose VXLAN
	// datagram gives exactly this ESP length under the SA's algorithm.
	MatchLength
	// MatchOrder: as MatchLength, the oldest of several such frames, all
	// of one connection (per SA the kernel encrypts in order).
	MatchOrder
)

func (m ESPMatch) String() string {
	switch m {
	case MatchSPISeq:
		return "spi+seq"
	case MatchLength:
		return "length"
	case MatchOrder:
		return "length+order"
	}
	return "unmatched"
}

// decodeESP fills f from an ESP packet's IPv4 header (ihl bytes of a
// packet of total bytes): Pkt carries the outer addresses, ID and length,
// ESP the SPI and sequence number.
func decodeESP(data []byte, ihl, total int, f *Frame) error {
	l4 := data[ihl:]
	if len(l4) > total-ihl {
		l4 = l4[:total-ihl]
	}
	var e layers.IPSecESP
	if e.DecodeFromBytes(l4, gopacket.NilDecodeFeedback) != nil {
		return ErrShort
	}
	if e.SPI == 0 { // reserved: never on the wire (RFC 4303 2.1)
		return ErrNotTCPUDP
	}
	var src, dst IP4
	copy(src[:], data[12:16])
	copy(dst[:], data[16:20])
	f.Pkt = Packet{Src: src, Dst: dst, ID: uint16(data[4])<<8 | uint16(data[5]), Proto: ProtoESP, TTL: data[8], Len: uint16(total - ihl)}
	f.IPLen = uint16(total)
	f.ESP = ESP{SPI: e.SPI, Seq: e.Seq}
	return nil
}

// IsESP says the frame is an ESP packet (decoded, or an ESP sighting of
// an inner packet).
func (f *Frame) IsESP() bool { return f.ESP.SPI != 0 }

// espSizes are the sizes an SA's algorithm adds around the plaintext:
// the IV, the alignment of plaintext + 2 (pad length, next header), and
// the ICV (esp4.c, esp_output: blksize = ALIGN(crypto_aead_blocksize, 4)).
type espSizes struct{ iv, align, icv int }

// espSizesOf reads the sizes from an SA's algorithms: the AEADs Docker
// and strongSwan use (rfc4106 and rfc4543 GCM, rfc7539esp ChaCha20-
// Poly1305: 8-byte IV, 4-byte alignment, the ICV the state names), and
// cbc(aes) with a truncated HMAC. Other algorithms: not known.
func espSizesOf(st *topology.XfrmState) (espSizes, string, bool) {
	var enc, auth *topology.XfrmAlgo
	for i := range st.Algos {
		a := &st.Algos[i]
		switch a.Kind {
		case topology.AlgoAEAD:
			if (strings.HasPrefix(a.Name, "rfc4106(") || strings.HasPrefix(a.Name, "rfc4543(") || strings.HasPrefix(a.Name, "rfc7539esp(")) &&
				a.ICVBits > 0 && a.ICVBits%8 == 0 {
				return espSizes{iv: 8, align: 4, icv: a.ICVBits / 8}, a.Name, true
			}
			return espSizes{}, a.Name, false
		case topology.AlgoEnc:
			enc = a
		case topology.AlgoAuthTrunc:
			auth = a
		}
	}
	if enc != nil && enc.Name == "cbc(aes)" && auth != nil && auth.TruncBits > 0 && auth.TruncBits%8 == 0 {
		return espSizes{iv: 16, align: 16, icv: auth.TruncBits / 8}, enc.Name + " " + auth.Name, true
	}
	var names []string
	for _, a := range st.Algos {
		names = append(names, a.Name)
	}
	return espSizes{}, strings.Join(names, " "), false
}

// vxlanOverhead is what VXLAN puts before an inner IPv4 packet: UDP (8),
// VXLAN (8), the inner Ethernet header (14).
const vxlanOverhead = 8 + 8 + 14

// espPayloadLen is the IP payload length of the ESP packet that carries
// the VXLAN datagram of an inner IPv4 packet of ipLen bytes in transport
// mode: ESP header (8), IV, plaintext padded with its 2 trailer bytes to
// the alignment, ICV.
func espPayloadLen(ipLen int, z espSizes) int {
	plain := vxlanOverhead + ipLen + 2
	if r := plain % z.align; r != 0 {
		plain += z.align - r
	}
	return 8 + z.iv + plain + z.icv
}

// espSA is what the model says about one SA seen on the wire.
type espSA struct {
	stat  *ESPStat
	sizes espSizes
	sized bool
}

// ESPStat is what trace made of the ESP sightings of one SA (Result.ESP).
type ESPStat struct {
	SPI topology.SPI `json:"spi"`
	Src string       `json:"src"`
	Dst string       `json:"dst"`
	// SA is the xfrm state of the SPI (as `ip xfrm state` names it:
	// proto, SPI, ends, reqid, mode), Algo its algorithm's name (never a
	// key), Policy the out policy whose template sends through it; empty
	// when the model has none.
	SA     string `json:"sa,omitempty"`
	Algo   string `json:"algo,omitempty"`
	Policy string `json:"policy,omitempty"`
	// Sightings counts the ESP packets of the SA seen at every point
	// (the same packet on both underlays counts twice); Matched those
	// tied to their inner packet, Ambiguous those several inner packets
	// of different connections fit, Unmatched the others.
	Sightings int `json:"sightings"`
	Matched   int `json:"matched"`
	Ambiguous int `json:"ambiguous"`
	Unmatched int `json:"unmatched"`
	// Note says why sightings could not be matched (the xfrm state not
	// collected, no such SA, an algorithm whose sizes are not known).
	Note string `json:"note,omitempty"`
}

// HopESP is an ESP sighting of a packet on the underlay (Hop.ESP).
type HopESP struct {
	SPI topology.SPI `json:"spi"`
	Seq uint32       `json:"seq"`
	Src string       `json:"src"`
	Dst string       `json:"dst"`
	// Match: spi+seq (the same ESP packet as on the other node's
	// underlay), length (the only inner frame whose VXLAN datagram gives
	// this ESP length, just before or after on the node's vxlan device),
	// length+order (the oldest of several such frames of one connection).
	Match string `json:"match"`
	// SA and Policy explain it from the model (ESPStat's).
	SA     string `json:"sa,omitempty"`
	Policy string `json:"policy,omitempty"`
}

type espID struct {
	src, dst IP4
	spi, seq uint32
}

type saKey struct {
	src, dst IP4
	spi      uint32
}

// innerSight is an inner packet leaving a node's vxlan device: an ESP
// packet of that node may carry it.
type innerSight struct {
	lp    *LPacket
	ts    int64
	ipLen int
	node  string
	vtep  netip.Addr // invalid: not known
}

// espWait is an ESP packet received on a node's underlay whose inner
// packet has not left the node's vxlan device yet.
type espWait struct {
	f    Frame
	node string
	sa   *espSA
}

// espMatcher ties ESP sightings to the inner packets the correlator
// groups (Stream runs it beside the correlator). Its memory is what is
// in flight within window.
type espMatcher struct {
	env    *Env
	cr     *Correlator
	window int64
	points []Point
	inner  []innerSight
	wait   []espWait
	// byID: the packets whose ESP sighting was matched, for the other
	// node's sighting of it, kept for the correlator's window (two nodes'
	// clocks may differ by that much), swept every quarter of it.
	byID    map[espID]idEntry
	isVX    []int8 // by point: 0 not known yet, 1 a vxlan device, 2 not
	idKeep  int64
	sweepAt int64
	sas     map[saKey]*espSA
	order   []*ESPStat
}

// espWindow is how far apart an inner frame on a vxlan device and its
// ESP packet on the node's underlay may be.
const espWindow = 250_000_000

func newESPMatcher(env *Env, cr *Correlator) *espMatcher {
	return &espMatcher{env: env, cr: cr, window: espWindow, byID: map[espID]idEntry{}, sas: map[saKey]*espSA{}, idKeep: int64(cr.o.Window)}
}

type idEntry struct {
	lp *LPacket
	ts int64
}

// matched notes that id is lp's, seen at ts.
func (m *espMatcher) matched(id espID, lp *LPacket, ts int64) {
	m.byID[id] = idEntry{lp, ts}
}

// sa finds (once) what the model says about the SA of an ESP frame.
func (m *espMatcher) sa(f *Frame) *espSA {
	k := saKey{f.Pkt.Src, f.Pkt.Dst, f.ESP.SPI}
	if s, ok := m.sas[k]; ok {
		return s
	}
	s := &espSA{stat: &ESPStat{SPI: topology.SPI(f.ESP.SPI), Src: f.Pkt.Src.String(), Dst: f.Pkt.Dst.String()}}
	m.sas[k] = s
	m.order = append(m.order, s.stat)
	st, pol, note := m.env.xfrmState(f.Pkt.Src.Addr(), f.Pkt.Dst.Addr(), topology.SPI(f.ESP.SPI))
	if st == nil {
		s.stat.Note = note
		return s
	}
	s.stat.SA = st.String()
	if pol != nil {
		s.stat.Policy = pol.String()
	}
	var algo string
	s.sizes, algo, s.sized = espSizesOf(st)
	s.stat.Algo = algo
	if !s.sized {
		s.stat.Note = fmt.Sprintf("algorithm %s: the length its ESP packets give a VXLAN datagram is not known, so they are not matched to inner packets", algo)
	}
	return s
}

// xfrmState finds the ESP SA src -> dst with spi in the hosts' xfrm
// states (the same SA is on both ends: outbound on src's node, inbound on
// dst's), with the out policy whose template sends through it. note says
// why there is none: no source, not collected, no such SA.
func (e *Env) xfrmState(src, dst netip.Addr, spi topology.SPI) (*topology.XfrmState, *topology.XfrmPolicy, string) {
	if e == nil {
		return nil, nil, "no source: the xfrm state is not known, so ESP packets are not matched to inner packets"
	}
	var st *topology.XfrmState
	var pol *topology.XfrmPolicy
	var uncollected []string
	for _, n := range e.Nodes {
		host := n.Model.Lookup("host")
		if host == nil || host.Xfrm == nil {
			uncollected = append(uncollected, nodeName(n))
			continue
		}
		for i := range host.Xfrm.States {
			s := &host.Xfrm.States[i]
			if s.Proto == topology.XfrmESP && s.SPI == spi && s.Src == src && s.Dst == dst && st == nil {
				st = s
			}
		}
		for i := range host.Xfrm.Policies {
			p := &host.Xfrm.Policies[i]
			if p.Dir != topology.XfrmOut || pol != nil {
				continue
			}
			for _, t := range p.Tmpls {
				if t.Proto == topology.XfrmESP && t.Src == src && t.Dst == dst && (t.SPI == spi || t.SPI == 0) {
					pol = p
				}
			}
		}
	}
	if st != nil {
		return st, pol, ""
	}
	if len(uncollected) > 0 {
		return nil, nil, fmt.Sprintf("the xfrm state of %s was not collected: SPI %s is not explained and its ESP packets are not matched to inner packets",
			strings.Join(uncollected, ", "), spi)
	}
	return nil, nil, fmt.Sprintf("no xfrm state of the source has SPI %s from %s to %s: its ESP packets are not matched to inner packets", spi, src, dst)
}

func nodeName(n *Node) string {
	if n.Name == "" {
		return "this host"
	}
	return n.Name
}

// node is the node a point is on ("" without an env).
func (m *espMatcher) node(p Point) *Node {
	if m.env == nil {
		return nil
	}
	return m.env.Node(p.Node)
}

// vxlanPoint: the point is a vxlan device (its role, or its link's kind
// in the node's model).
func (m *espMatcher) vxlanPoint(p Point) bool {
	if p.Role == "vxlan" {
		return true
	}
	n := m.node(p)
	if n == nil {
		return false
	}
	if ns := n.Model.Lookup(p.Netns); ns != nil {
		if l := ns.Link(p.Ifname); l != nil {
			return l.Kind == "vxlan"
		}
	}
	return false
}

// vtep is where the vxlan device sends a frame for mac, as its FDB in
// the node's model says: the entry's VTEP (invalid when the model has no
// entry, or an all-zeros entry floods it). nowhere: the model holds the
// device's remote entries and none for mac, nor an all-zeros one, so the
// device drops the frame (Docker's vxlan devices learn nothing and have
// no default destination): a frame a bridge flooded there, which no ESP
// packet carries.
func (m *espMatcher) vtep(p Point, mac [6]byte) (vtep netip.Addr, nowhere bool) {
	n := m.node(p)
	if n == nil {
		return netip.Addr{}, false
	}
	ns := n.Model.Lookup(p.Netns)
	if ns == nil {
		return netip.Addr{}, false
	}
	hw := topology.MACFrom(mac[:])
	var zero topology.MAC
	if z, err := topology.ParseMAC("00:00:00:00:00:00"); err == nil {
		zero = z
	}
	remotes, flood := 0, false
	for _, e := range ns.FDB {
		if e.Dev != p.Ifname || !e.Dst.IsValid() {
			continue
		}
		remotes++
		switch e.MAC {
		case hw:
			return e.Dst, false
		case zero:
			flood = true
		}
	}
	return netip.Addr{}, remotes > 0 && !flood
}

// esp files an ESP frame: the same (SPI, seq) as a packet matched already
// is that packet; one sent is matched to an inner frame that left the
// node's vxlan device just before; one received waits for its inner frame.
func (m *espMatcher) esp(f *Frame, points []Point) {
	m.points = points
	m.expire(f.TS)
	s := m.sa(f)
	s.stat.Sightings++
	id := espID{f.Pkt.Src, f.Pkt.Dst, f.ESP.SPI, f.ESP.Seq}
	if lp := m.byID[id].lp; lp != nil {
		if m.attach(lp, f, MatchSPISeq) {
			s.stat.Matched++
			m.unwait(id)
			return
		}
	}
	if !s.sized {
		s.stat.Unmatched++
		return
	}
	p := points[f.Point]
	out, known := m.direction(f, p)
	if !known {
		s.stat.Unmatched++
		return
	}
	if !out {
		m.wait = append(m.wait, espWait{f: *f, node: p.Node, sa: s})
		return
	}
	want := int(f.Pkt.Len)
	var cands []int
	for i, in := range m.inner {
		if in.node != p.Node || in.ts > f.TS || f.TS-in.ts > m.window || espPayloadLen(in.ipLen, s.sizes) != want {
			continue
		}
		if in.vtep.IsValid() && in.vtep != f.Pkt.Dst.Addr() {
			continue
		}
		if hasESP(in.lp, p.Node, true, points) {
			continue
		}
		cands = append(cands, i)
	}
	i, how := pickInner(len(cands), func(k int) *Conn { return m.inner[cands[k]].lp.conn })
	switch how {
	case espUnmatched:
		if len(cands) > 0 {
			s.stat.Ambiguous++
		} else {
			s.stat.Unmatched++
		}
		return
	}
	in := m.inner[cands[i]]
	m.inner = append(m.inner[:cands[i]], m.inner[cands[i]+1:]...)
	if m.attach(in.lp, f, how) {
		s.stat.Matched++
		m.matched(id, in.lp, f.TS)
		m.resolveWaiting(id, in.lp)
	} else {
		s.stat.Unmatched++
	}
}

// pickInner chooses among n candidates in time order: the only one (length),
// the oldest when all are of one connection (order); none when they are
// of different connections (ambiguous) or there are none.
func pickInner(n int, conn func(int) *Conn) (int, ESPMatch) {
	switch n {
	case 0:
		return 0, espUnmatched
	case 1:
		return 0, MatchLength
	}
	c0 := conn(0)
	for k := 1; k < n; k++ {
		if conn(k) != c0 {
			return 0, espUnmatched
		}
	}
	return 0, MatchOrder
}

// direction: sent or received by the node of the point (the frame's
// direction, else whether the node owns its source or destination).
func (m *espMatcher) direction(f *Frame, p Point) (out, known bool) {
	switch f.Dir {
	case DirOut:
		return true, true
	case DirIn:
		return false, true
	}
	n := m.node(p)
	if n == nil {
		return false, false
	}
	if h := n.Model.Lookup("host"); h != nil {
		if _, ok := h.Owns(f.Pkt.Src.Addr()); ok {
			return true, true
		}
		if _, ok := h.Owns(f.Pkt.Dst.Addr()); ok {
			return false, true
		}
	}
	return false, false
}

// inner notes an inner frame the correlator filed under lp: leaving a
// vxlan device, an ESP packet of its node may carry it next; arriving on
// one, it is what an ESP packet received just before carried.
func (m *espMatcher) innerFrame(f *Frame, lp *LPacket, points []Point) {
	if lp == nil || f.VXLAN || int(f.Point) >= len(points) {
		return
	}
	// whether a point is a vxlan device, worked out once per point (this
	// runs for every frame)
	for len(m.isVX) < len(points) {
		m.isVX = append(m.isVX, 0)
	}
	if m.isVX[f.Point] == 0 {
		m.isVX[f.Point] = 2
		if m.vxlanPoint(points[f.Point]) {
			m.isVX[f.Point] = 1
		}
	}
	if m.isVX[f.Point] != 1 {
		return
	}
	p := points[f.Point]
	m.points = points
	m.expire(f.TS)
	switch f.Dir {
	case DirOut:
		vtep, nowhere := m.vtep(p, f.DstMAC)
		if nowhere {
			return
		}
		m.inner = append(m.inner, innerSight{lp: lp, ts: f.TS, ipLen: int(f.IPLen), node: p.Node, vtep: vtep})
	case DirIn:
		if hasESP(lp, p.Node, false, points) {
			return
		}
		from, _ := m.vtep(p, f.SrcMAC)
		var cands []int
		for i := range m.wait {
			w := &m.wait[i]
			if w.node != p.Node || w.f.TS > f.TS || f.TS-w.f.TS > m.window || espPayloadLen(int(f.IPLen), w.sa.sizes) != int(w.f.Pkt.Len) {
				continue
			}
			if from.IsValid() && from != w.f.Pkt.Src.Addr() {
				continue
			}
			cands = append(cands, i)
		}
		// The candidates are ESP packets, the inner frame is one: the
		// choice is ambiguous when several fit (nothing says which
		// connection an ESP packet belongs to).
		how := MatchLength
		switch {
		case len(cands) == 0:
			return
		case len(cands) > 1:
			how = espUnmatched
		}
		if how == espUnmatched {
			for _, i := range cands {
				m.wait[i].sa.stat.Ambiguous++
			}
			m.wait = remove(m.wait, cands)
			return
		}
		w := m.wait[cands[0]]
		m.wait = remove(m.wait, cands)
		if m.attach(lp, &w.f, how) {
			w.sa.stat.Matched++
			m.matched(espID{w.f.Pkt.Src, w.f.Pkt.Dst, w.f.ESP.SPI, w.f.ESP.Seq}, lp, w.f.TS)
		} else {
			w.sa.stat.Unmatched++
		}
	}
}

func remove[T any](s []T, idx []int) []T {
	out := s[:0]
	k := 0
	for i := range s {
		if k < len(idx) && idx[k] == i {
			k++
			continue
		}
		out = append(out, s[i])
	}
	clear(s[len(out):])
	return out
}

// resolveWaiting attaches the received sightings of a packet whose sent
// one was just matched (another node's underlay saw it first: clocks of
// two nodes differ).
func (m *espMatcher) resolveWaiting(id espID, lp *LPacket) {
	var done []int
	for i := range m.wait {
		w := &m.wait[i]
		if (espID{w.f.Pkt.Src, w.f.Pkt.Dst, w.f.ESP.SPI, w.f.ESP.Seq}) == id {
			if m.attach(lp, &w.f, MatchSPISeq) {
				w.sa.stat.Matched++
			} else {
				w.sa.stat.Unmatched++
			}
			done = append(done, i)
		}
	}
	m.wait = remove(m.wait, done)
}

// unwait drops the waiting sighting of id (matched by its twin).
func (m *espMatcher) unwait(id espID) {
	var done []int
	for i := range m.wait {
		w := &m.wait[i]
		if (espID{w.f.Pkt.Src, w.f.Pkt.Dst, w.f.ESP.SPI, w.f.ESP.Seq}) == id {
			done = append(done, i)
		}
	}
	m.wait = remove(m.wait, done)
}

// hasESP: lp already has an ESP sighting sent (out) or received on node.
func hasESP(lp *LPacket, node string, out bool, points []Point) bool {
	for i := range lp.Frames {
		g := &lp.Frames[i]
		if g.IsESP() && int(g.Point) < len(points) && points[g.Point].Node == node && (g.Dir == DirOut) == out {
			return true
		}
	}
	return false
}

// attach adds the ESP sighting to lp: the inner packet's fields, the
// outer addresses in Outer, the ESP header with how it was matched.
func (m *espMatcher) attach(lp *LPacket, f *Frame, how ESPMatch) bool {
	if lp.conn == nil || lp.conn.finished || len(lp.Frames) == 0 {
		return false
	}
	g := *f
	g.Outer = Encap{Src: f.Pkt.Src, Dst: f.Pkt.Dst}
	// The inner packet as seen nearest in time (NAT may have rewritten
	// it earlier on its way).
	var inner *Frame
	for i := range lp.Frames {
		h := &lp.Frames[i]
		if !h.IsESP() && (inner == nil || absDiff(h.TS, f.TS) < absDiff(inner.TS, f.TS)) {
			inner = h
		}
	}
	if inner == nil {
		return false
	}
	g.Pkt, g.IPLen = inner.Pkt, inner.IPLen
	g.ESP.Match = how
	if g.Dir == DirUnknown {
		if out, known := m.direction(f, m.points[f.Point]); known {
			g.Dir = map[bool]Dir{true: DirOut, false: DirIn}[out]
		}
	}
	return m.cr.addSighting(lp, &g)
}

// expire forgets what is out of the window: an ESP packet received that
// no inner frame followed is unmatched.
func (m *espMatcher) expire(now int64) {
	if now >= m.sweepAt {
		m.sweepAt = now + m.idKeep/4
		for id, e := range m.byID {
			if now-e.ts > m.idKeep {
				delete(m.byID, id)
			}
		}
	}
	k := 0
	for _, in := range m.inner {
		if now-in.ts <= m.window {
			m.inner[k] = in
			k++
		}
	}
	clear(m.inner[k:])
	m.inner = m.inner[:k]
	k = 0
	for _, w := range m.wait {
		if now-w.f.TS <= m.window {
			m.wait[k] = w
			k++
			continue
		}
		w.sa.stat.Unmatched++
	}
	clear(m.wait[k:])
	m.wait = m.wait[:k]
}

// stats ends the matching (what waits is unmatched) and returns what each
// SA's sightings came to, in the order first seen (nil: no ESP).
func (m *espMatcher) stats() []ESPStat {
	m.expire(1<<63 - 1)
	if len(m.order) == 0 {
		return nil
	}
	out := make([]ESPStat, 0, len(m.order))
	for _, s := range m.order {
		out = append(out, *s)
	}
	return out
}

// hopESP describes an ESP sighting for Hop.ESP, explained by its SA.
func (a *Analysis) hopESP(f *Frame) (*HopESP, string) {
	h := &HopESP{SPI: topology.SPI(f.ESP.SPI), Seq: f.ESP.Seq, Src: f.Outer.Src.String(), Dst: f.Outer.Dst.String(), Match: f.ESP.Match.String()}
	st, pol, _ := a.Env.xfrmState(f.Outer.Src.Addr(), f.Outer.Dst.Addr(), h.SPI)
	if st != nil {
		h.SA = st.String()
	}
	if pol != nil {
		h.Policy = pol.String()
	}
	return h, fmt.Sprintf("esp spi %s seq %d (%s -> %s)", h.SPI, h.Seq, h.Src, h.Dst)
}

// espRewrite explains the step into ESP (encrypt, on the sender's host)
// or out of it (decrypt, on the receiver's) between two sightings.
func (a *Analysis) espRewrite(f *Frame, p Point, kind, dir string) Rewrite {
	h, _ := a.hopESP(f)
	r := Rewrite{Node: p.Node, Netns: p.Netns, Kind: kind, Dir: dir, Seen: "packets", From: h.Src, To: h.Dst, Rule: h.SA,
		Note: fmt.Sprintf("spi %s seq %d, matched by %s", h.SPI, h.Seq, h.Match)}
	if h.Policy != "" && kind == "esp-encrypt" {
		r.Note += "; out policy " + h.Policy
	}
	if h.SA == "" && a.Env != nil {
		r.Note += "; no xfrm state of the model explains it"
	}
	return r
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// hasESP: a node's host has an ESP SA (its VXLAN may leave as ESP).
func (e *Env) hasESP() bool {
	if e == nil {
		return false
	}
	for _, n := range e.Nodes {
		if h := n.Model.Lookup("host"); h != nil && h.Xfrm != nil {
			for _, s := range h.Xfrm.States {
				if s.Proto == topology.XfrmESP {
					return true
				}
			}
		}
	}
	return false
}
