package inspect

import (
	"fmt"
	"sync"

	"github.com/meshtrace/meshtrace/topology"
)

// resolvePeers fills every veth's Peer.Netns/Ifname it can. First from the
// ifindexes alone (topology.ResolvePeers: a pair whose indexes point at
// each other in exactly one way). What stays ambiguous — the same pair of
// ifindexes in several namespaces, as in namespaces built the same way —
// is settled by asking the kernel which netnsid A gave each candidate B
// (one RTM_GETNSID per pair, cached): the candidate whose netnsid is the
// one X reports holds X's peer. Every netnsid learned this way is kept in
// A's NetnsIDs. The questions the passes may ask are asked first, workers
// at a time, one visit per asking namespace (prefetch): on a node of many
// namespaces built alike (2,000 of 9 worlds) they are thousands, and one
// by one they were a tenth of the read's CPU, all of it after the
// parallel read.
func resolvePeers(m *topology.Model, refs []NetnsRef, lr LinkReader, workers int) {
	topology.ResolvePeers(m)
	pr := &peerAsk{m: m, refs: map[*topology.Namespace]NetnsRef{}, ids: map[[2]int]int{}, lr: lr, byPair: map[[2]int][]linkAt{}}
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
	pr.prefetch(workers)
	for pr.pass() {
		topology.ResolvePeers(m)
	}
}

type peerAsk struct {
	m    *topology.Model
	pos  []*topology.Namespace
	refs map[*topology.Namespace]NetnsRef
	ids  map[[2]int]int // (from, to) positions -> netnsid, -2 when asking failed
	// pre holds prefetch's answers, taken into ids (an error into the
	// asking namespace's Errors) when pass asks.
	pre map[[2]int]idAnswer
	lr  LinkReader
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
	ans, ok := p.pre[k]
	if !ok {
		ans.id, ans.err = p.lr.NetnsID(p.refs[a], p.refs[b])
	}
	id, err := ans.id, ans.err
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

// idAnswer is the kernel's answer to one netnsid question.
type idAnswer struct {
	id  int
	err error
}

// netnsIDsAsker is a LinkReader that asks one namespace for the netnsids
// of several in one visit (kernelLinks).
type netnsIDsAsker interface {
	NetnsIDs(from NetnsRef, to []NetnsRef) ([]int, []error)
}

// prefetch asks, workers at a time, every question the first pass could
// ask: for each unresolved veth x of a, which netnsid a gave each
// candidate namespace b holding x's other end, but where a already knows
// that netnsid or b by another. Later passes ask only among those (they
// resolve, never add, candidates), and an answer pass never uses is never
// seen, nor its error.
func (p *peerAsk) prefetch(workers int) {
	byFrom := map[int][]int{}
	var froms []int
	seen := map[[2]int]bool{}
	for ai, a := range p.pos {
		for _, x := range a.Links {
			if !unresolvedPeer(x) {
				continue
			}
			for _, c := range p.byPair[[2]int{x.Peer.Index, x.Index}] {
				b, y := p.pos[c.pos], c.l
				if b == a || b.LinkByIndex(x.Peer.Index) != y || !unresolvedPeer(y) {
					continue
				}
				if name, ok := a.NetnsIDs[x.Peer.NetnsID]; ok && name != b.Name {
					continue
				}
				if _, ok := knownAs(a, b.Name); ok {
					continue
				}
				k := [2]int{ai, c.pos}
				if seen[k] {
					continue
				}
				seen[k] = true
				if len(byFrom[ai]) == 0 {
					froms = append(froms, ai)
				}
				byFrom[ai] = append(byFrom[ai], c.pos)
			}
		}
	}
	if len(froms) == 0 {
		return
	}
	p.pre = make(map[[2]int]idAnswer, len(seen))
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(workers, len(froms))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ai := range jobs {
				tos := byFrom[ai]
				ans := p.ask(ai, tos)
				mu.Lock()
				for i, bi := range tos {
					p.pre[[2]int{ai, bi}] = ans[i]
				}
				mu.Unlock()
			}
		}()
	}
	for _, ai := range froms {
		jobs <- ai
	}
	close(jobs)
	wg.Wait()
}

// ask asks namespace ai for the netnsids of namespaces tos, in one visit
// when the reader can.
func (p *peerAsk) ask(ai int, tos []int) []idAnswer {
	from := p.refs[p.pos[ai]]
	to := make([]NetnsRef, len(tos))
	for i, bi := range tos {
		to[i] = p.refs[p.pos[bi]]
	}
	out := make([]idAnswer, len(tos))
	if b, ok := p.lr.(netnsIDsAsker); ok {
		ids, errs := b.NetnsIDs(from, to)
		for i := range out {
			out[i] = idAnswer{ids[i], errs[i]}
		}
		return out
	}
	for i := range to {
		out[i].id, out[i].err = p.lr.NetnsID(from, to[i])
	}
	return out
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
