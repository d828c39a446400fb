package replay

import (
	"sort"

	"github.com/meshtrace/meshtrace/trace"
)

// event is one sighting: connection ci's packet pi at its hop hi.
type event struct {
	ci, pi, hi int
	// first: the connection's earliest sighting.
	first bool
}

// events orders every sighting of every packet by time (ties keep the
// connection, packet and hop order) and marks where each connection
// starts.
func events(cs []trace.Flow) []event {
	var ev []event
	for ci := range cs {
		for pi, p := range cs[ci].Packets {
			for hi := range p.Hops {
				ev = append(ev, event{ci: ci, pi: pi, hi: hi})
			}
		}
	}
	sort.SliceStable(ev, func(i, j int) bool {
		return sighting(cs, ev[i]).TS.Before(sighting(cs, ev[j]).TS)
	})
	seen := map[int]bool{}
	for i := range ev {
		if !seen[ev[i].ci] {
			seen[ev[i].ci], ev[i].first = true, true
		}
	}
	return ev
}

func sighting(cs []trace.Flow, e event) trace.Hop {
	return cs[e.ci].Packets[e.pi].Hops[e.hi]
}

// step moves the cursor i by one unit in direction dir: "hop" (every
// sighting), "packet" (the first sighting of each packet) or "conn" (the
// first sighting of each connection). It stays put when there is none.
func step(ev []event, i, dir int, unit string) int {
	if len(ev) == 0 {
		return 0
	}
	cur := ev[i]
	ok := func(e event) bool { return true }
	switch unit {
	case "packet":
		ok = func(e event) bool { return e.hi == 0 && (e.ci != cur.ci || e.pi != cur.pi) }
	case "conn":
		ok = func(e event) bool { return e.first && e.ci != cur.ci }
	}
	for j := i + dir; j >= 0 && j < len(ev); j += dir {
		if ok(ev[j]) {
			return j
		}
	}
	return i
}
