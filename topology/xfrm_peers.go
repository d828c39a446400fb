package topology

import (
	"net/netip"
	"sort"
)

// XfrmPeer is what a namespace's IPsec state says about one remote node:
// the SAs that carry its traffic to the node (Out: from a local address to
// Remote) and from it (In), and the out policies whose templates send to
// it. Docker programs, per remote node and key, a pair of ESP SAs (the
// inbound one for every key, the outbound one for the primary key) and one
// out policy for the primary key's SPI; what is missing from a pair is
// what the later checks look for.
type XfrmPeer struct {
	Local  netip.Addr `json:"local"`
	Remote netip.Addr `json:"remote"`
	Out    []XfrmSA   `json:"out"`
	In     []XfrmSA   `json:"in"`
	// Policies are the indexes in Xfrm.Policies of the out policies
	// with a template from Local to Remote.
	Policies []int `json:"policies,omitempty"`
}

// XfrmSA names one SA of a peer.
type XfrmSA struct {
	Proto XfrmProto `json:"proto"`
	SPI   SPI       `json:"spi"`
	Reqid uint32    `json:"reqid"`
	// State is the index of the SA in Xfrm.States.
	State int `json:"state"`
}

// PairSPIs groups the SAs and out policies of x by remote node. local says
// which addresses are this node's; an SA neither of whose ends is local,
// or both, has no peer and is returned in foreign (by index in x.States).
// Peers come ordered by local then remote address, each one's SAs by SPI.
// It is pure: it reads x only.
func PairSPIs(x *Xfrm, local func(netip.Addr) bool) (peers []XfrmPeer, foreign []int) {
	if x == nil {
		return nil, nil
	}
	type key struct{ local, remote netip.Addr }
	byKey := map[key]*XfrmPeer{}
	peer := func(l, r netip.Addr) *XfrmPeer {
		k := key{l, r}
		if p, ok := byKey[k]; ok {
			return p
		}
		p := &XfrmPeer{Local: l, Remote: r, Out: []XfrmSA{}, In: []XfrmSA{}}
		byKey[k] = p
		return p
	}
	for i, s := range x.States {
		sa := XfrmSA{Proto: s.Proto, SPI: s.SPI, Reqid: s.Reqid, State: i}
		switch src, dst := local(s.Src), local(s.Dst); {
		case src && !dst:
			p := peer(s.Src, s.Dst)
			p.Out = append(p.Out, sa)
		case dst && !src:
			p := peer(s.Dst, s.Src)
			p.In = append(p.In, sa)
		default:
			foreign = append(foreign, i)
		}
	}
	for i, pol := range x.Policies {
		if pol.Dir != XfrmOut || pol.Socket {
			continue
		}
		for _, t := range pol.Tmpls {
			if local(t.Src) && !local(t.Dst) {
				p := peer(t.Src, t.Dst)
				p.Policies = append(p.Policies, i)
				break
			}
		}
	}
	for _, p := range byKey {
		for _, sas := range [][]XfrmSA{p.Out, p.In} {
			sort.Slice(sas, func(i, j int) bool {
				if sas[i].SPI != sas[j].SPI {
					return sas[i].SPI < sas[j].SPI
				}
				return sas[i].State < sas[j].State
			})
		}
		peers = append(peers, *p)
	}
	sort.Slice(peers, func(i, j int) bool {
		if c := peers[i].Local.Compare(peers[j].Local); c != 0 {
			return c < 0
		}
		return peers[i].Remote.Compare(peers[j].Remote) < 0
	})
	return peers, foreign
}

// XfrmPeers pairs the namespace's SAs by remote node (PairSPIs), taking as
// local the addresses of its links and, where those were not collected, the
// sources of its out policies' templates (a template of an out policy
// starts on this node).
func (ns *Namespace) XfrmPeers() (peers []XfrmPeer, foreign []int) {
	if ns == nil || ns.Xfrm == nil {
		return nil, nil
	}
	tmplSrc := map[netip.Addr]bool{}
	if len(ns.Links) == 0 {
		for _, p := range ns.Xfrm.Policies {
			if p.Dir == XfrmOut && !p.Socket {
				for _, t := range p.Tmpls {
					tmplSrc[t.Src] = true
				}
			}
		}
	}
	return PairSPIs(ns.Xfrm, func(a netip.Addr) bool {
		if _, ok := ns.Owns(a); ok {
			return true
		}
		return tmplSrc[a] && a.IsValid() && !a.IsUnspecified()
	})
}
