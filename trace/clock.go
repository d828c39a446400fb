package trace

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Captures made on several nodes carry each node's clock, and two VMs'
// clocks can differ by more than a packet's transit: the merge then puts
// a node's sightings before the ones that caused them, and the rewrites
// read from the hop order are wrong. The same ESP packet (SPI, sequence)
// seen on two nodes' underlays measures the difference: one way it is
// transit + skew, the other way transit - skew, so half the difference
// of the two is the skew (NTP's assumption: the same transit both ways).

// maxClockESP bounds the ESP packets a Survey keeps for the estimate.
const maxClockESP = 4096

type espKey struct{ spi, seq uint32 }

type espSight struct {
	node string
	ts   int64
	dir  Dir
}

// addESP notes an ESP sighting on a node's underlay for ClockShifts.
func (s *Survey) addESP(p Point, f *Frame) {
	if p.Node == "" || f.Pkt.Proto != ProtoESP || (f.Dir != DirIn && f.Dir != DirOut) {
		return
	}
	if s.esp == nil {
		s.esp = map[espKey][]espSight{}
	}
	k := espKey{f.ESP.SPI, f.ESP.Seq}
	sights, ok := s.esp[k]
	if !ok && len(s.esp) >= maxClockESP {
		return
	}
	for _, x := range sights {
		if x.node == p.Node {
			return // the same packet at another point of that node
		}
	}
	s.esp[k] = append(sights, espSight{p.Node, f.TS, f.Dir})
}

// ClockShift is a node's clock against the reference node's, measured by
// ESP packets both nodes' underlays saw.
type ClockShift struct {
	Node, Ref string
	// Ahead is how far Node's clock runs ahead of Ref's (negative:
	// behind); subtracting it from Node's times puts them on Ref's clock.
	Ahead time.Duration
	// To and From count the packets measured each way (Ref to Node, Node
	// to Ref).
	To, From int
}

// ClockShifts estimates each node's clock against the first node (by
// name) from the ESP packets seen leaving one node and entering the other:
// only where packets went both ways (one way alone cannot tell transit
// from skew). Nodes without such packets are not in the list.
func (s *Survey) ClockShifts() []ClockShift {
	nodes := map[string]bool{}
	for _, sights := range s.esp {
		for _, x := range sights {
			nodes[x.node] = true
		}
	}
	if len(nodes) < 2 {
		return nil
	}
	names := slices.Sorted(maps.Keys(nodes))
	ref := names[0]
	var out []ClockShift
	for _, node := range names[1:] {
		var to, from []int64 // Ref out -> node in; node out -> Ref in
		for _, sights := range s.esp {
			var r, n *espSight
			for i := range sights {
				switch sights[i].node {
				case ref:
					r = &sights[i]
				case node:
					n = &sights[i]
				}
			}
			switch {
			case r == nil || n == nil:
			case r.dir == DirOut && n.dir == DirIn:
				to = append(to, n.ts-r.ts)
			case n.dir == DirOut && r.dir == DirIn:
				from = append(from, r.ts-n.ts)
			}
		}
		if len(to) == 0 || len(from) == 0 {
			continue
		}
		ahead := (median(to) - median(from)) / 2
		out = append(out, ClockShift{Node: node, Ref: ref, Ahead: time.Duration(ahead), To: len(to), From: len(from)})
	}
	return out
}

func median(v []int64) int64 {
	slices.SortFunc(v, cmp.Compare[int64])
	return v[len(v)/2]
}

// String says what the shift is and how it was measured, for a note.
func (c ClockShift) String() string {
	way := "ahead of"
	d := c.Ahead
	if d < 0 {
		way, d = "behind", -d
	}
	return fmt.Sprintf("node %s's clock runs %s %s %s's (measured by %d ESP packets %s to %s and %d back, seen on both underlays): its capture's times are put on %s's clock",
		c.Node, d.Round(time.Microsecond), way, c.Ref, c.To, c.Ref, c.Node, c.From, c.Ref)
}
