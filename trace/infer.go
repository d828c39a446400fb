package trace

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

type nsRef struct {
	node *Node
	ns   *topology.Namespace
}

// Survey is what a first reading of capture files tells about them, for
// the second, streamed one: their points, and per file the addresses
// its frames carried (to attribute a foreign capture to a namespace),
// per point the MACs (to name an interface), and the traffic's port.
type Survey struct {
	Points []Point
	// addrs counts, per file, the destinations of frames received and
	// the sources of frames sent (both for an unknown direction).
	addrs map[string]map[IP4]int
	// macs lists, per point, the (source, destination) MACs of its
	// frames, first seen first (a few).
	macs     map[int32][][2][6]byte
	firstSYN int64
	synPort  uint16
	udp      map[uint16]int
	// esp are the ESP packets seen on nodes' underlays, for ClockShifts.
	esp map[espKey][]espSight
}

// maxMACs bounds the MAC pairs kept per point.
const maxMACs = 32

// Add notes one frame seen at point p.
func (s *Survey) Add(p Point, f *Frame) {
	if s.addrs == nil {
		s.addrs, s.macs, s.udp, s.firstSYN = map[string]map[IP4]int{}, map[int32][][2][6]byte{}, map[uint16]int{}, -1
	}
	if p.Netns == "" {
		v := s.addrs[p.File]
		if v == nil {
			v = map[IP4]int{}
			s.addrs[p.File] = v
		}
		if f.Dir != DirOut {
			v[f.Pkt.Dst]++
		}
		if f.Dir != DirIn {
			v[f.Pkt.Src]++
		}
	}
	if ms := s.macs[f.Point]; len(ms) < maxMACs {
		pair := [2][6]byte{f.SrcMAC, f.DstMAC}
		if !slices.Contains(ms, pair) {
			s.macs[f.Point] = append(ms, pair)
		}
	}
	s.addESP(p, f)
	k := &f.Pkt
	if k.Proto == ProtoTCP && k.Flags&(FlagSYN|FlagACK) == FlagSYN && (s.firstSYN < 0 || f.TS < s.firstSYN) {
		s.firstSYN, s.synPort = f.TS, k.DPort
	}
	if k.Proto == ProtoUDP && k.DPort < 32768 {
		s.udp[k.DPort]++
	}
}

// GuessPort names the traffic of the files: the destination of the first
// TCP SYN, else the most frequent UDP destination port below 32768.
func (s *Survey) GuessPort() (proto string, port int) {
	if s.synPort != 0 {
		return "tcp", int(s.synPort)
	}
	best := 0
	for p, n := range s.udp {
		if n > best || (n == best && int(p) < port) {
			best, port, proto = n, int(p), "udp"
		}
	}
	return proto, port
}

// Attribute maps the points of foreign captures (a tcpdump file: no
// namespace in it) to the namespace of env that most of their packets
// belong to, one namespace per file: a packet received was addressed to
// the capturing namespace, a packet sent came from it. Ties go to the
// earlier node (the source's own first). It then names `-i any`
// interfaces by index, and a one-interface capture's interface by the
// MACs its frames carry. Frames without a direction get one from
// Directions.
func (s *Survey) Attribute(env *Env) {
	if env == nil {
		return
	}
	owners := map[IP4][]nsRef{}
	ownersOf := func(a IP4) []nsRef {
		if o, ok := owners[a]; ok {
			return o
		}
		var o []nsRef
		for _, n := range env.Nodes {
			for _, ns := range n.Model.Namespaces {
				if _, ok := ns.Owns(a.Addr()); ok {
					o = append(o, nsRef{n, ns})
				}
			}
		}
		owners[a] = o
		return o
	}
	foreign := map[string]bool{}
	for _, p := range s.Points {
		if p.Netns == "" {
			foreign[p.File] = true
		}
	}
	votes := map[string]map[nsRef]int{}
	for file := range foreign {
		v := map[nsRef]int{}
		for a, n := range s.addrs[file] {
			for _, r := range ownersOf(a) {
				v[r] += n
			}
		}
		votes[file] = v
	}
	order := map[*Node]int{}
	for i, n := range env.Nodes {
		order[n] = i
	}
	claimed := map[nsRef]bool{}
	for _, p := range s.Points {
		if n := env.Node(p.Node); n != nil && p.Netns != "" {
			if ns := n.Model.Lookup(p.Netns); ns != nil {
				claimed[nsRef{n, ns}] = true
			}
		}
	}
	files := make([]string, 0, len(votes))
	for f := range votes {
		files = append(files, f)
	}
	sort.Strings(files)
	// Files named after a namespace first, then the clear votes, then
	// ties broken by leaving out namespaces other files already claim.
	assigned := map[string]nsRef{}
	for _, file := range files {
		if r, ok := hinted(file, env); ok {
			assigned[file], claimed[r] = r, true
		}
	}
	for pass := 0; pass < 2; pass++ {
		for _, file := range files {
			if _, done := assigned[file]; done {
				continue
			}
			v := votes[file]
			if pass == 1 {
				v = unclaimed(v, claimed)
			}
			if r, ok := elect(v, order); ok {
				assigned[file], claimed[r] = r, true
			}
		}
	}
	for _, file := range files {
		best, ok := assigned[file]
		if !ok {
			continue
		}
		for i := range s.Points {
			p := &s.Points[i]
			if p.File != file || p.Netns != "" {
				continue
			}
			p.Node, p.Netns = best.node.Name, best.ns.Name
			if idx, ok := strings.CutPrefix(p.Ifname, "if"); ok {
				if n, err := strconv.Atoi(idx); err == nil {
					if l := best.ns.LinkByIndex(n); l != nil {
						p.Ifname = l.Name
					}
				}
			}
		}
	}
	s.macInterfaces(env)
}

// macInterfaces names the interface of a one-interface capture (a plain
// pcap has no name for it): the namespace's link whose MAC its frames
// carry.
func (s *Survey) macInterfaces(env *Env) {
	for pi := range s.Points {
		p := &s.Points[pi]
		if p.Ifname != "" || p.Netns == "" {
			continue
		}
		links := linkMACs(env, *p)
		if links == nil {
			continue
		}
		for _, pair := range s.macs[int32(pi)] {
			if name, ok := links[pair[0]]; ok {
				p.Ifname = name
			} else if name, ok := links[pair[1]]; ok {
				p.Ifname = name
			}
			if p.Ifname != "" {
				break
			}
		}
	}
}

// linkMACs maps the MACs of a point's namespace to its links' names (nil
// when the namespace is not in env).
func linkMACs(env *Env, p Point) map[[6]byte]string {
	n := env.Node(p.Node)
	if n == nil || p.Netns == "" {
		return nil
	}
	ns := n.Model.Lookup(p.Netns)
	if ns == nil {
		return nil
	}
	links := map[[6]byte]string{}
	for _, l := range ns.Links {
		if hw := l.MAC.HardwareAddr(); len(hw) == 6 {
			links[[6]byte(hw)] = l.Name
		}
	}
	return links
}

// hinted finds a namespace whose name is part of the file's name (the
// longest such), like 09cd513d96a2-eth0.pcap or node1-ingress_sbox.pcap.
func hinted(file string, env *Env) (nsRef, bool) {
	var best nsRef
	for _, n := range env.Nodes {
		for _, ns := range n.Model.Namespaces {
			if len(ns.Name) < 4 || !strings.Contains(file, ns.Name) {
				continue
			}
			if best.ns != nil && len(ns.Name) <= len(best.ns.Name) {
				// Same name on several nodes: the node named in the file.
				if len(ns.Name) < len(best.ns.Name) || n.Name == "" || !strings.Contains(file, n.Name) {
					continue
				}
			}
			best = nsRef{n, ns}
		}
	}
	return best, best.ns != nil
}

func unclaimed(v map[nsRef]int, claimed map[nsRef]bool) map[nsRef]int {
	out := map[nsRef]int{}
	for r, n := range v {
		if !claimed[r] {
			out[r] = n
		}
	}
	return out
}

// elect picks the namespace with the most votes; between equals, the one
// on the earlier node; a tie within one node is no answer.
func elect(v map[nsRef]int, order map[*Node]int) (nsRef, bool) {
	var best nsRef
	bestN, tie := 0, false
	for r, n := range v {
		switch {
		case n > bestN, n == bestN && order[r.node] < order[best.node]:
			best, bestN, tie = r, n, false
		case n == bestN && order[r.node] == order[best.node]:
			tie = true
		}
	}
	return best, bestN > 0 && !tie
}

// Directions gives frames of a known namespace but unknown direction
// one: sent when the source MAC is one of the namespace's links',
// received when the destination MAC is.
type Directions struct {
	// by point: nil when its namespace is unknown
	byPoint []map[[6]byte]string
}

// NewDirections prepares Directions for points attributed against env
// (nil when env is nil).
func NewDirections(points []Point, env *Env) *Directions {
	if env == nil {
		return nil
	}
	d := &Directions{}
	for _, p := range points {
		d.byPoint = append(d.byPoint, linkMACs(env, p))
	}
	return d
}

// Fix sets f's direction when it is unknown and the MACs tell.
func (d *Directions) Fix(f *Frame) {
	if d == nil || f.Dir != DirUnknown || int(f.Point) >= len(d.byPoint) {
		return
	}
	m := d.byPoint[f.Point]
	if _, ok := m[f.SrcMAC]; ok {
		f.Dir = DirOut
	} else if _, ok := m[f.DstMAC]; ok {
		f.Dir = DirIn
	}
}
