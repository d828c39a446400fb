package trace

import (
	"net/netip"

	"github.com/meshtrace/meshtrace/topology"
)

// unseenLocalNAT recovers the NAT a connection got before any capture point
// saw it: a client on the node itself (a probe, curl 127.0.0.1:8080) is
// DNATed in the host's nat OUTPUT and MASQUERADEd in POSTROUTING before its
// first packet reaches docker_gwbridge, so the first sighting already
// carries the rewritten tuple. The host's conntrack entry whose reply tuple
// answers that sighting holds the original one. It returns the rewrites
// (first) and the original client and server, or nothing when the first
// sighting is not a packet leaving the host or no entry explains it.
func (a *Analysis) unseenLocalNAT(req *LPacket, cts []CTMatch) (rw []Rewrite, client, server string) {
	if req == nil || len(req.Frames) == 0 {
		return nil, "", ""
	}
	f := &req.Frames[0]
	p := a.Points[f.Point]
	if p.Netns != "host" || f.Dir != DirOut {
		return nil, "", ""
	}
	seen := TupleOf(&f.Pkt)
	for _, ct := range a.Conntrack[nsKey(p.Node, p.Netns)] {
		if ct.Proto != ProtoName(seen.Proto) || !ctIs(ct.Reply, seen.Reverse()) {
			continue
		}
		origSrc := netip.AddrPortFrom(ct.Orig.Src, ct.Orig.SPort)
		origDst := netip.AddrPortFrom(ct.Orig.Dst, ct.Orig.DPort)
		seenSrc := ap(seen.Src, seen.SPort)
		seenDst := ap(seen.Dst, seen.DPort)
		if origDst != seenDst {
			r := Rewrite{Node: p.Node, Netns: p.Netns, Kind: "dnat", Dir: "request", From: origDst.String(), To: seenDst.String(),
				Seen: "conntrack", Note: "nat OUTPUT, before the first capture point"}
			r.Rule = a.localRule(p, origSrc, origDst, "OUTPUT", p.Ifname)
			rw = append(rw, r)
		}
		if origSrc != seenSrc {
			kind := "snat"
			rule := a.localRule(p, origSrc, seenDst, "POSTROUTING", p.Ifname)
			if r := a.ruleTarget(p, rule); r == "MASQUERADE" {
				kind = "masquerade"
			}
			rw = append(rw, Rewrite{Node: p.Node, Netns: p.Netns, Kind: kind, Dir: "request", From: origSrc.String(), To: seenSrc.String(),
				Rule: rule, Seen: "conntrack", Note: "nat POSTROUTING of a locally sourced packet"})
		}
		if len(rw) > 0 {
			return rw, origSrc.String(), origDst.String()
		}
		return nil, "", ""
	}
	return nil, "", ""
}

// localRule evaluates the host's nat chain for the connection's first
// packet and returns the rule that rewrote it, "" when the model says none.
func (a *Analysis) localRule(p Point, src, dst netip.AddrPort, chain, out string) string {
	n := a.Env.Node(p.Node)
	if n == nil || n.Model == nil {
		return ""
	}
	host := n.Model.Lookup(p.Netns)
	if host == nil {
		return ""
	}
	pkt := topology.Packet{Proto: "tcp", Src: src.Addr(), SPort: int(src.Port()), Dst: dst.Addr(), DPort: int(dst.Port()), OutIface: out}
	if a.Env.Proto != "" {
		pkt.Proto = a.Env.Proto
	}
	d := topology.Eval(host, "nat", chain, &pkt)
	if d.By == nil {
		return ""
	}
	return d.By.Rule.Text
}

// ruleTarget is the target of a rule text of the host's nat table.
func (a *Analysis) ruleTarget(p Point, text string) string {
	n := a.Env.Node(p.Node)
	if text == "" || n == nil || n.Model == nil {
		return ""
	}
	nat := n.Model.Lookup(p.Netns).Firewall.Table("nat")
	if nat == nil {
		return ""
	}
	for _, c := range nat.Chains {
		for _, r := range c.All() {
			if r.Text == text {
				return r.Target
			}
		}
	}
	return ""
}
