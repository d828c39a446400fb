package trace

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// rewrites compares consecutive sightings of one packet and explains each
// change of addresses or ports from the model. done records, per
// namespace, the request's rewrites (".../dst", ".../src") so the reply's
// un-NAT is named after the rewrite it undoes.
func (a *Analysis) rewrites(lp *LPacket, reply bool, done map[string]Rewrite) ([]Rewrite, map[string]Rewrite) {
	var out []Rewrite
	add := func(r Rewrite) {
		for _, x := range out {
			if x.Node == r.Node && x.Netns == r.Netns && x.Kind == r.Kind && x.From == r.From && x.To == r.To {
				return
			}
		}
		out = append(out, r)
	}
	dir := "request"
	if reply {
		dir = "reply"
	}
	for i := 1; i < len(lp.Frames); i++ {
		f0, f1 := &lp.Frames[i-1], &lp.Frames[i]
		p0, p1 := a.Points[f0.Point], a.Points[f1.Point]
		if !f0.VXLAN && f1.VXLAN {
			add(Rewrite{Node: p0.Node, Netns: p0.Netns, Kind: "vxlan-encap", Dir: dir, Seen: "packets",
				From: f1.Outer.Src.String(), To: f1.Outer.Dst.String(), Note: fmt.Sprintf("vni %d via %s", f1.Outer.VNI, p0.Ifname)})
		}
		if !f0.IsESP() && f1.IsESP() && f1.Dir != DirIn {
			add(a.espRewrite(f1, p1, "esp-encrypt", dir))
		}
		if f0.IsESP() && !f1.IsESP() && f0.Dir != DirOut {
			add(a.espRewrite(f0, p0, "esp-decrypt", dir))
		}
		if f0.VXLAN && !f1.VXLAN {
			add(Rewrite{Node: p1.Node, Netns: p1.Netns, Kind: "vxlan-decap", Dir: dir, Seen: "packets",
				From: f0.Outer.Src.String(), To: f0.Outer.Dst.String(), Note: fmt.Sprintf("vni %d via %s", f0.Outer.VNI, p1.Ifname)})
		}
		t0, t1 := TupleOf(&f0.Pkt), TupleOf(&f1.Pkt)
		if t0 == t1 {
			continue
		}
		node, netns := where(f0, f1, p0, p1)
		if t0.Dst != t1.Dst || t0.DPort != t1.DPort {
			from, to := ap(t0.Dst, t0.DPort), ap(t1.Dst, t1.DPort)
			var r Rewrite
			if reply {
				r = a.explainUndo(node, netns, "src", from, to, done)
			} else {
				r = a.explainDst(node, netns, from, to)
				done = remember(done, nsKey(node, netns)+"/dst", r)
			}
			r.Dir = dir
			add(r)
		}
		if t0.Src != t1.Src || t0.SPort != t1.SPort {
			from, to := ap(t0.Src, t0.SPort), ap(t1.Src, t1.SPort)
			var r Rewrite
			if reply {
				r = a.explainUndo(node, netns, "dst", from, to, done)
			} else {
				r = a.explainSrc(node, netns, from, to)
				done = remember(done, nsKey(node, netns)+"/src", r)
			}
			r.Dir = dir
			add(r)
		}
	}
	return out, done
}

// remember notes a request's rewrite in done (made on the first).
func remember(done map[string]Rewrite, k string, r Rewrite) map[string]Rewrite {
	if done == nil {
		done = map[string]Rewrite{}
	}
	done[k] = r
	return done
}

func ap(a IP4, port uint16) netip.AddrPort { return netip.AddrPortFrom(a.Addr(), port) }

// where attributes a change between two sightings to a namespace: the
// one both were seen in, else the one the packet was inside of between
// them (it entered p0's, or was leaving p1's).
func where(f0, f1 *Frame, p0, p1 Point) (node, netns string) {
	switch {
	case p0.Node == p1.Node && p0.Netns == p1.Netns:
		return p1.Node, p1.Netns
	case f0.Dir == DirIn:
		return p0.Node, p0.Netns
	default:
		return p1.Node, p1.Netns
	}
}

// explainDst names a destination rewrite of a request: the model's DNAT
// whose target it is, the load balancer that picked it as a real server,
// or a REDIRECT to its port.
func (a *Analysis) explainDst(node, netns string, from, to netip.AddrPort) Rewrite {
	r := Rewrite{Node: node, Netns: netns, From: from.String(), To: to.String(), Seen: "packets"}
	hops := a.Env.hopsIn(node, netns)
	for _, h := range hops {
		if h.Kind == topology.HopDNAT && h.To.Addr == to.Addr() {
			r.Kind, r.Rule = "dnat", h.Rule
			return r
		}
	}
	for _, h := range hops {
		if h.Kind == topology.HopIPVS && a.backendOf(node, to.Addr()) {
			r.Kind, r.FWMark, r.Impl, r.Scheduler = "ipvs", h.FWMark, string(h.Impl), h.Scheduler
			r.Rule = a.lbRule(node, netns, h, to.Addr())
			for _, m := range hops {
				if m.Kind == topology.HopMark && m.Mark == h.FWMark {
					r.MarkRule = m.Rule
				}
			}
			return r
		}
	}
	for _, h := range hops {
		if h.Kind == topology.HopRedirect && h.ToPort == int(to.Port()) {
			r.Kind, r.Rule, r.ToPort = "redirect", h.Rule, h.ToPort
			return r
		}
	}
	r.Kind = "dnat"
	if from.Addr() == to.Addr() {
		r.Kind, r.ToPort = "redirect", int(to.Port())
	}
	if a.Env != nil {
		r.Note = "no rule of the model explains this rewrite"
	}
	return r
}

// explainSrc names a source rewrite of a request (SNAT, MASQUERADE).
func (a *Analysis) explainSrc(node, netns string, from, to netip.AddrPort) Rewrite {
	r := Rewrite{Node: node, Netns: netns, Kind: "snat", From: from.Addr().String(), To: to.Addr().String(), Seen: "packets"}
	if from.Port() != to.Port() {
		r.From, r.To = from.String(), to.String()
	}
	for _, h := range a.Env.hopsIn(node, netns) {
		if (h.Kind == topology.HopSNAT || h.Kind == topology.HopMasquerade) && (!h.To.IsValid() || h.To.Addr == to.Addr()) {
			r.Kind, r.Rule = string(h.Kind), h.Rule
			return r
		}
	}
	if a.Env != nil {
		r.Note = "no rule of the model explains this rewrite"
	}
	return r
}

// explainUndo names a reply's rewrite after the request's rewrite it
// undoes: a reply's source changes back where the request's destination
// was rewritten, its destination where the source was.
func (a *Analysis) explainUndo(node, netns, undoes string, from, to netip.AddrPort, done map[string]Rewrite) Rewrite {
	fwd, ok := done[nsKey(node, netns)+"/"+undoes]
	if !ok {
		fwd.Kind = map[string]string{"src": "snat", "dst": "dnat"}[undoes]
		if a.Env != nil {
			fwd.Note = "the request's rewrite here was not seen"
		}
	}
	return Rewrite{Node: node, Netns: netns, Kind: "un-" + fwd.Kind, From: from.String(), To: to.String(), Seen: "packets",
		Rule: fwd.Rule, FWMark: fwd.FWMark, Impl: fwd.Impl, Note: fwd.Note}
}

// backendOf reports whether a is a real server of the node's path.
func (a *Analysis) backendOf(node string, addr netip.Addr) bool {
	n := a.Env.Node(node)
	if n == nil || n.Path == nil {
		return false
	}
	for _, b := range n.Path.Backends {
		if b.IP == addr {
			return true
		}
	}
	return false
}

// lbRule finds the emulated load balancer's rule for one real server, or
// the service's first rule.
func (a *Analysis) lbRule(node, netns string, h topology.Hop, addr netip.Addr) string {
	n := a.Env.Node(node)
	if n == nil {
		return h.Rule
	}
	ns := n.Model.Lookup(netns)
	if ns == nil {
		return h.Rule
	}
	for _, s := range ns.LBServices() {
		if s.FWMark != h.FWMark {
			continue
		}
		for _, d := range s.Dests {
			if d.Addr == addr && d.Rule != "" {
				return d.Rule
			}
		}
	}
	return h.Rule
}

// unseenRedirect adds the REDIRECT of the namespace the request was
// delivered in: it happens after the last sighting (AF_PACKET sees a
// packet before PREROUTING), so only conntrack or the model show it.
func (a *Analysis) unseenRedirect(req *LPacket, have []Rewrite, cts []CTMatch) []Rewrite {
	if a.Env == nil {
		return nil
	}
	lf := &req.Frames[len(req.Frames)-1]
	p := a.Points[lf.Point]
	n := a.Env.Node(p.Node)
	if n == nil || lf.Dir == DirOut {
		return nil
	}
	ns := n.Model.Lookup(p.Netns)
	if ns == nil || ns.Role != topology.RoleTask {
		return nil
	}
	for _, r := range have {
		if r.Kind == "redirect" && r.Netns == p.Netns && r.Node == p.Node {
			return nil
		}
	}
	for _, h := range a.Env.hopsIn(p.Node, p.Netns) {
		if h.Kind != topology.HopRedirect {
			continue
		}
		r := Rewrite{Node: p.Node, Netns: p.Netns, Kind: "redirect", Dir: "request", Rule: h.Rule, ToPort: h.ToPort,
			From: endpoint(lf.Pkt.Dst, lf.Pkt.DPort), To: endpoint(lf.Pkt.Dst, uint16(h.ToPort)), Seen: "model"}
		for _, ct := range cts {
			if ct.Node == p.Node && ct.Netns == p.Netns && strings.HasSuffix(strings.SplitN(ct.Reply, " -> ", 2)[0], fmt.Sprintf(":%d", h.ToPort)) {
				r.Seen = "conntrack"
			}
		}
		return []Rewrite{r}
	}
	return nil
}

// breakText marks a model hop where the path breaks.
const breakText = "the model's path breaks here"

// DescribeHop renders one model hop for "what should happen next".
func DescribeHop(h topology.Hop, backends []topology.Backend) string {
	rule := ""
	if h.Rule != "" {
		rule = " (" + h.Rule + ")"
	}
	switch h.Kind {
	case topology.HopDNAT:
		return fmt.Sprintf("%s: dnat to %s%s", h.Netns, h.To, rule)
	case topology.HopMark:
		return fmt.Sprintf("%s: mark %#x%s", h.Netns, h.Mark, rule)
	case topology.HopIPVS:
		var ips []string
		for _, b := range backends {
			ips = append(ips, b.IP.String())
		}
		impl := h.Impl
		if impl == "" {
			impl = topology.LBIPVS
		}
		return fmt.Sprintf("%s: load-balance fwmark %d (%s, %s) to one of %s", h.Netns, h.FWMark, impl, h.Scheduler, strings.Join(ips, ", "))
	case topology.HopSNAT, topology.HopMasquerade:
		return fmt.Sprintf("%s: %s to %s%s", h.Netns, h.Kind, h.To, rule)
	case topology.HopRedirect:
		return fmt.Sprintf("%s: redirect to port %d%s", h.Netns, h.ToPort, rule)
	case topology.HopBreak:
		return fmt.Sprintf("%s: %s: %s", h.Netns, breakText, h.Reason)
	}
	return fmt.Sprintf("%s: %s%s", h.Netns, h.Kind, rule)
}
