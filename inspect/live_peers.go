package inspect

import (
	"fmt"

	"github.com/meshtrace/meshtrace/topology"
)

// resolvePeers fills every veth's Peer.Netns/Ifname it can. First from the
// ifindexes alone (topology.ResolvePeers: a pair whose indexes point at
// each other in exactly one way). What stays ambiguous — the same pair of
// ifindexes in several namespaces, as in namespaces built the same way —
// is settled by asking the kernel which netnsid A gave each candidate B
// (one RTM_GETNSID per pair, cached): the candidate whose netnsid is the
// one X reports holds X's peer. Every netnsid learned this way is kept in
// A's NetnsIDs. A reader that can (netnsIDAsker) asks through one
// session, which keeps what the next question can reuse.
func resolvePeers(m *topology.Model, refs []NetnsRef, lr LinkReader) {
	topology.ResolvePeers(m)
	pr := &peerAsk{m: m, refs: map[*topology.Namespace]NetnsRef{}, ids: map[[2]int]int{}, lr: lr, byPair: map[[2]int][]linkAt{}}
	if s, ok := lr.(netnsIDAsker); ok {
		ids := s.netnsIDs()
		defer ids.close()
		pr.ask = ids.ask
	} else {
		pr.ask = lr.NetnsID
	}
	for i, ns := range m.Namespaces {
		pr.refs[ns] = refs[i]
		pr.pos = append(pr.pos, ns)
		for _, l := range ns.Links {
			if l.Peer != nil && l.Peer.Index > 0 {
				k := [2]int{l.Index, l.Peer.Index}
				pr.byPair[k] = append(pr.byPair[k], linkAt{i, l})
			}
		}
	}
	for pr.pass() {
		topology.ResolvePeers(m)
	}
}

type peerAsk struct {
	m    *topology.Model
	pos  []*topology.Namespace
	refs map[*topology.Namespace]NetnsRef
	ids  map[[2]int]int // (from, to) positions -> netnsid, -2 when asking failed
	lr   LinkReader
	// ask is lr.NetnsID, or a session's ask (netnsIDAsker)
	ask func(from, to NetnsRef) (int, error)
	// byPair lists the veths by their ifindex and their peer's, in model
	// order: x's other end is among byPair[{x's peer index, x's index}].
	byPair map[[2]int][]linkAt
}

// linkAt is a link and the position of its namespace.
type linkAt struct {
	pos int
	l   *topology.Link
}

func unresolvedPeer(l *topology.Link) bool {
	return l.Peer != nil && l.Peer.Netns == "" && l.Peer.Index > 0 && l.Peer.NetnsID >= 0
}

// pass settles what it can with the kernel and reports progress.
func (p *peerAsk) pass() bool {
	progress := false
	for ai, a := range p.pos {
		for _, x := range a.Links {
			if !unresolvedPeer(x) {
				continue
			}
			for _, c := range p.byPair[[2]int{x.Peer.Index, x.Index}] {
				bi, b, y := c.pos, p.pos[c.pos], c.l
				if b == a || b.LinkByIndex(x.Peer.Index) != y || !unresolvedPeer(y) {
					continue
				}
				if name, ok := a.NetnsIDs[x.Peer.NetnsID]; ok && name != b.Name {
					continue
				}
				if id, ok := knownAs(a, b.Name); ok {
					if id != x.Peer.NetnsID {
						continue
					}
				} else if p.netnsID(ai, bi) != x.Peer.NetnsID {
					continue
				}
				// b is the namespace a calls x's netnsid, and y is the
				// link at x's peer index there that points back: the pair.
				pair(a, x, b, y)
				progress = true
				break
			}
		}
	}
	return progress
}

// netnsID asks (once) which netnsid namespace ai gave namespace bi.
func (p *peerAsk) netnsID(ai, bi int) int {
	k := [2]int{ai, bi}
	if id, ok := p.ids[k]; ok {
		return id
	}
	a, b := p.pos[ai], p.pos[bi]
	id, err := p.ask(p.refs[a], p.refs[b])
	if err != nil {
		a.Errors = append(a.Errors, fmt.Sprintf("netns %s: netnsid of %s: %v", a.Name, b.Name, err))
		id = -2
	}
	p.ids[k] = id
	if id >= 0 {
		setID(a, id, b.Name)
	}
	return id
}

// netnsIDAsker is a LinkReader that asks many netnsid questions more
// cheaply through a session (kernelLinks: questions from one namespace
// share one visit and one socket).
type netnsIDAsker interface {
	netnsIDs() netnsIDs
}

// netnsIDs is a session of netnsid questions (LinkReader.NetnsID's).
type netnsIDs interface {
	ask(from, to NetnsRef) (int, error)
	close()
}

// knownAs returns the netnsid ns already knows name by.
func knownAs(ns *topology.Namespace, name string) (int, bool) {
	for id, n := range ns.NetnsIDs {
		if n == name {
			return id, true
		}
	}
	return 0, false
}

func pair(a *topology.Namespace, x *topology.Link, b *topology.Namespace, y *topology.Link) {
	x.Peer.Netns, x.Peer.Ifname = b.Name, y.Name
	y.Peer.Netns, y.Peer.Ifname = a.Name, x.Name
	setID(a, x.Peer.NetnsID, b.Name)
	setID(b, y.Peer.NetnsID, a.Name)
}

func setID(ns *topology.Namespace, id int, name string) {
	if ns.NetnsIDs == nil {
		ns.NetnsIDs = map[int]string{}
	}
	ns.NetnsIDs[id] = name
}
