package topology

import "strings"

// ResolvePeers fills Peer.Netns and Peer.Ifname of every veth whose other
// end it can identify among the model's namespaces, and records the
// netnsids it learns in Namespace.NetnsIDs.
//
// A veth X in namespace A reports its peer as an ifindex p and a netnsid k
// (-1: the peer is in A itself). Ifindexes are per namespace, so p alone
// does not say where the peer is; the candidates are the veths Y with
// Index p whose own peer index is X's index, in A when k is -1 and in
// another namespace otherwise, and consistent with what the NetnsIDs maps
// already say: A's netnsid k names one namespace, and a namespace gives
// each other namespace exactly one netnsid. A pair is resolved only when X
// has exactly one candidate and that candidate has exactly X; an ambiguous
// veth stays unresolved (nothing is guessed, in particular not the "peer
// index is mine minus one" folklore). Each resolved pair pins a netnsid,
// which can make further pairs unique, so this repeats until nothing
// changes. Peers already resolved (Netns set) are kept as they are.
func ResolvePeers(m *Model) {
	if m == nil {
		return
	}
	r := &peerResolver{m: m}
	r.resolveByName()
	for r.pass() {
	}
}

type peerEnd struct {
	ns *Namespace
	l  *Link
}

type peerResolver struct{ m *Model }

// resolveByName handles what `ip addr` prints as "veth0@veth1": a peer in
// the same namespace that the reader named but may not have indexed.
func (r *peerResolver) resolveByName() {
	for _, ns := range r.m.Namespaces {
		for _, l := range ns.Links {
			p := l.Peer
			if p == nil || p.Netns != "" || p.NetnsID != -1 || p.Ifname == "" {
				continue
			}
			y := ns.Link(p.Ifname)
			if y == nil || y == l || (p.Index != 0 && y.Index != p.Index) {
				continue
			}
			// Only a pair names each other; a VLAN or macvlan names its
			// parent, which does not name it back.
			if y.Peer == nil || y.Peer.NetnsID != -1 || (y.Peer.Ifname != l.Name && y.Peer.Index != l.Index) {
				continue
			}
			p.Index = y.Index
			p.Netns = ns.Name
		}
	}
}

// pass resolves every pair that is unique right now and reports whether it
// resolved any.
func (r *peerResolver) pass() bool {
	type pair struct{ x, y peerEnd }
	var found []pair
	for _, ans := range r.m.Namespaces {
		for _, x := range ans.Links {
			if !unresolved(x) {
				continue
			}
			cands := r.candidates(peerEnd{ans, x})
			if len(cands) != 1 {
				continue
			}
			y := cands[0]
			back := r.candidates(y)
			if len(back) != 1 || back[0].l != x {
				continue
			}
			found = append(found, pair{peerEnd{ans, x}, y})
		}
	}
	progress := false
	for _, p := range found {
		// Both ends of a pair appear in found; the second sees the pair
		// resolved already. A pair that an earlier one in this pass made
		// inconsistent (a netnsid now pinned elsewhere) waits for the next.
		if !unresolved(p.x.l) || !unresolved(p.y.l) || !r.consistent(p.x, p.y) || !r.consistent(p.y, p.x) {
			continue
		}
		link(p.x, p.y)
		link(p.y, p.x)
		progress = true
	}
	return progress
}

// unresolved: a peer with an index whose namespace or name is not known
// yet. A peer whose namespace is named but not its link (what `ip` prints
// as "link-netns NAME") is unresolved too, and looked for only in NAME.
func unresolved(l *Link) bool {
	return l.Peer != nil && (l.Peer.Netns == "" || l.Peer.Ifname == "") && l.Peer.Index > 0
}

// candidates lists the unresolved veths that can be x's other end.
func (r *peerResolver) candidates(x peerEnd) []peerEnd {
	var out []peerEnd
	for _, bns := range r.m.Namespaces {
		if (x.l.Peer.NetnsID == -1) != (bns == x.ns) {
			continue
		}
		if x.l.Peer.Netns != "" && x.l.Peer.Netns != bns.Name {
			continue
		}
		y := bns.LinkByIndex(x.l.Peer.Index)
		if y == nil || y == x.l || !unresolved(y) || y.Peer.Index != x.l.Index {
			continue
		}
		if (y.Peer.NetnsID == -1) != (x.l.Peer.NetnsID == -1) {
			continue
		}
		if !r.consistent(x, peerEnd{bns, y}) || !r.consistent(peerEnd{bns, y}, x) {
			continue
		}
		out = append(out, peerEnd{bns, y})
	}
	return out
}

// consistent reports whether x's namespace may know y's namespace under the
// netnsid x's peer carries, given what x's namespace's map already says.
func (r *peerResolver) consistent(x, y peerEnd) bool {
	k := x.l.Peer.NetnsID
	if k < 0 {
		return true
	}
	ids := x.ns.NetnsIDs
	if name, ok := ids[k]; ok {
		return name == y.ns.Name
	}
	// A namespace has one netnsid per other namespace: if y's namespace
	// already has another id here, k is not it.
	for id, name := range ids {
		if name == y.ns.Name && id != k {
			return false
		}
	}
	return true
}

func link(x, y peerEnd) {
	x.l.Peer.Netns = y.ns.Name
	x.l.Peer.Ifname = y.l.Name
	if k := x.l.Peer.NetnsID; k >= 0 {
		if x.ns.NetnsIDs == nil {
			x.ns.NetnsIDs = map[int]string{}
		}
		x.ns.NetnsIDs[k] = y.ns.Name
	}
}

// InferKinds gives the links whose kind the input did not show (plain `ip
// addr` prints none: Kind "") the kind their wiring proves, and records the
// proof in KindFrom. It runs after ResolvePeers:
//
//   - a link that links of its own namespace name as their master is a
//     bridge;
//   - a link whose peer ResolvePeers found is a veth (only a veth pair names
//     each other's ifindex and netnsid both ways);
//   - a link named vxlan* that is enslaved to a bridge and whose "@ifN"
//     resolves to no peer is a VXLAN device: Docker creates the overlay's
//     VTEP in the host namespace and moves it into the overlay namespace,
//     where it keeps naming its old ifindex (`vxlan0@if7 ... link-netnsid
//     0`); that is no veth peer, so Peer is dropped.
//
// Anything else stays unknown: nothing is guessed from names alone.
func InferKinds(m *Model) {
	if m == nil {
		return
	}
	for _, ns := range m.Namespaces {
		ports := map[string][]string{}
		for _, l := range ns.Links {
			if l.Master != "" {
				ports[l.Master] = append(ports[l.Master], l.Name)
			}
		}
		for _, l := range ns.Links {
			if l.Kind != "" {
				continue
			}
			switch {
			case len(ports[l.Name]) > 0:
				l.Kind, l.KindFrom = "bridge", "master of "+strings.Join(ports[l.Name], ", ")
			case l.Peer != nil && l.Peer.Netns != "" && l.Peer.Ifname != "":
				l.Kind, l.KindFrom = "veth", "its peer is "+l.Peer.Netns+"/"+l.Peer.Ifname
			}
		}
		for _, l := range ns.Links {
			if l.Kind != "" || !strings.HasPrefix(l.Name, "vxlan") || l.Master == "" {
				continue
			}
			if br := ns.Link(l.Master); br == nil || br.Kind != "bridge" {
				continue
			}
			if l.Peer != nil && l.Peer.Netns != "" && l.Peer.Ifname != "" {
				continue
			}
			l.Kind, l.KindFrom = "vxlan", "a vxlan device enslaved to bridge "+l.Master+" with no veth peer"
			l.Peer = nil
		}
	}
}
