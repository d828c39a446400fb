package topology

import (
	"fmt"
	"net/netip"
	"sort"
)

// Advertise is the node's advertise (data-path) address: where the other
// nodes send it VXLAN and gossip, and the source its own VXLAN packets
// must carry (the peers' FDB entries put its endpoints behind it).
type Advertise struct {
	Addr netip.Addr
	// From says where it was read: Docker's metadata, the VXLAN device,
	// or (Weak) meshtrace's own rule for the node's address.
	From string
	// Weak is set when nothing of Docker's said it: it is the node's
	// address as NodeAddress picks it.
	Weak bool
}

// AdvertiseAddress is the node's advertise address, from the best
// evidence the model holds:
//
//  1. Docker: a peer of a swarm network (`docker network inspect`'s
//     Peers) that the host owns, or the node (Host IP) that `--verbose`
//     gives a task whose address a namespace here owns;
//  2. an overlay's VXLAN device with a fixed local address;
//  3. else NodeAddress (Weak).
//
// It is the zero Advertise when the host's links were not collected.
func AdvertiseAddress(m *Model) Advertise {
	host := m.Lookup("host")
	if host == nil || host.Links == nil {
		return Advertise{}
	}
	if d := m.Docker; d != nil {
		for _, n := range d.Networks {
			for _, p := range n.Peers {
				if _, ok := host.Owns(p.IP); ok {
					return Advertise{Addr: p.IP, From: fmt.Sprintf("Docker: this node is peer %s of network %s", p.IP, n.Name)}
				}
			}
		}
		for _, n := range d.Networks {
			for _, t := range n.Tasks {
				if !t.Node.IsValid() {
					continue
				}
				if owner := m.Owner(t.IP); owner != nil && owner != host {
					if _, ok := host.Owns(t.Node); ok {
						return Advertise{Addr: t.Node, From: fmt.Sprintf("Docker: task %s (%s, in %s) runs on node %s", t.Name, t.IP, owner.Name, t.Node)}
					}
				}
			}
		}
	}
	for _, ns := range m.Namespaces {
		if ns.Role != RoleOverlay {
			continue
		}
		for _, l := range ns.Links {
			if l.VXLAN != nil && l.VXLAN.Local.IsValid() {
				return Advertise{Addr: l.VXLAN.Local, From: fmt.Sprintf("the local address of VXLAN device %s/%s", ns.Name, l.Name)}
			}
		}
	}
	if a, l := NodeAddress(host); a.IsValid() {
		return Advertise{Addr: a, From: fmt.Sprintf("the node's address as meshtrace picks it (%s's first address): Docker's advertise address was not collected", l.Name), Weak: true}
	}
	return Advertise{}
}

// PeerNode is another node of the swarm and how the model knows it.
type PeerNode struct {
	Addr netip.Addr
	From string
}

// PeerNodes are the other nodes the model knows of, by address: Docker's
// network peers and the nodes its tasks run on, and the remote VTEPs the
// overlays' FDB entries send to; never an address of the host's own.
func PeerNodes(m *Model) []PeerNode {
	ps := newPeerSet(m)
	add := ps.add
	if d := m.Docker; d != nil {
		for _, n := range d.Networks {
			for _, p := range n.Peers {
				add(p.IP, fmt.Sprintf("Docker: peer %s of network %s", p.Name, n.Name))
			}
		}
		for _, n := range d.Networks {
			for _, t := range n.Tasks {
				add(t.Node, fmt.Sprintf("Docker: task %s of network %s runs there", t.Name, n.Name))
			}
		}
	}
	for _, ns := range m.Namespaces {
		if ns.Role != RoleOverlay {
			continue
		}
		for _, f := range ns.FDB {
			add(f.Dst, fmt.Sprintf("the FDB of overlay %s sends %s there", ns.Name, f.MAC))
		}
	}
	out := ps.out
	sort.SliceStable(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}

// peerSet collects other nodes' addresses once each, never the host's.
type peerSet struct {
	host *Namespace
	seen map[netip.Addr]bool
	out  []PeerNode
}

func newPeerSet(m *Model) *peerSet {
	return &peerSet{host: m.Lookup("host"), seen: map[netip.Addr]bool{}}
}

func (s *peerSet) add(a netip.Addr, from string) {
	if !a.IsValid() || a.IsUnspecified() || s.seen[a] {
		return
	}
	if s.host != nil {
		if _, own := s.host.Owns(a); own {
			return
		}
	}
	s.seen[a] = true
	s.out = append(s.out, PeerNode{a, from})
}
