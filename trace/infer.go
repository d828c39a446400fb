package trace

import (
	"sort"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

type nsRef struct {
	node *Node
	ns   *topology.Namespace
}

// Attribute maps the points of foreign captures (a tcpdump file: no
// namespace in it) to the namespace of env that most of their packets
// belong to, one namespace per file: a packet received was addressed to
// the capturing namespace, a packet sent came from it. Ties go to the
// earlier node (the source's own first). It then names `-i any`
// interfaces by index and gives Ethernet frames without a direction one
// from their MACs.
func Attribute(c *Capture, env *Env) {
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
	votes := map[string]map[nsRef]int{}
	for i := range c.Frames {
		f := &c.Frames[i]
		p := c.Points[f.Point]
		if p.Netns != "" {
			continue
		}
		v := votes[p.File]
		if v == nil {
			v = map[nsRef]int{}
			votes[p.File] = v
		}
		if f.Dir != DirOut {
			for _, r := range ownersOf(f.Pkt.Dst) {
				v[r]++
			}
		}
		if f.Dir != DirIn {
			for _, r := range ownersOf(f.Pkt.Src) {
				v[r]++
			}
		}
	}
	order := map[*Node]int{}
	for i, n := range env.Nodes {
		order[n] = i
	}
	claimed := map[nsRef]bool{}
	for _, p := range c.Points {
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
		for i := range c.Points {
			p := &c.Points[i]
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
	macDirections(c, env)
	macInterfaces(c, env)
}

// macInterfaces names the interface of a one-interface capture (a plain
// pcap has no name for it): the namespace's link whose MAC its frames
// carry.
func macInterfaces(c *Capture, env *Env) {
	for pi := range c.Points {
		p := &c.Points[pi]
		if p.Ifname != "" || p.Netns == "" {
			continue
		}
		n := env.Node(p.Node)
		if n == nil {
			continue
		}
		ns := n.Model.Lookup(p.Netns)
		if ns == nil {
			continue
		}
		links := map[[6]byte]string{}
		for _, l := range ns.Links {
			if hw := l.MAC.HardwareAddr(); len(hw) == 6 {
				links[[6]byte(hw)] = l.Name
			}
		}
		for i := range c.Frames {
			f := &c.Frames[i]
			if int(f.Point) != pi {
				continue
			}
			if name, ok := links[f.SrcMAC]; ok {
				p.Ifname = name
			} else if name, ok := links[f.DstMAC]; ok {
				p.Ifname = name
			}
			if p.Ifname != "" {
				break
			}
		}
	}
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

// macDirections gives frames of a known namespace but unknown direction
// one: sent when the source MAC is one of the namespace's links',
// received when the destination MAC is.
func macDirections(c *Capture, env *Env) {
	macs := map[int32]map[[6]byte]bool{}
	for i := range c.Frames {
		f := &c.Frames[i]
		if f.Dir != DirUnknown {
			continue
		}
		m, ok := macs[f.Point]
		if !ok {
			p := c.Points[f.Point]
			if n := env.Node(p.Node); n != nil && p.Netns != "" {
				if ns := n.Model.Lookup(p.Netns); ns != nil {
					m = map[[6]byte]bool{}
					for _, l := range ns.Links {
						if hw := l.MAC.HardwareAddr(); len(hw) == 6 {
							m[[6]byte(hw)] = true
						}
					}
				}
			}
			macs[f.Point] = m
		}
		switch {
		case m == nil:
		case m[f.SrcMAC]:
			f.Dir = DirOut
		case m[f.DstMAC]:
			f.Dir = DirIn
		}
	}
}
