package trace

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// stop explains a flow that was not answered: where its request (or its
// reply) was last seen, and what the model says should have come next.
func (a *Analysis) stop(c *Conn, be *Backend) *Stop {
	if c.Request < 0 {
		return nil
	}
	req := c.Packets[c.Request]
	// A reset answers for the flow: say who sent it.
	for _, lp := range c.Packets {
		if lp.Reply && lp.Key.Flags&FlagRST != 0 {
			f := &lp.Frames[0]
			s := a.stopAt("reply RST", f)
			s.Reason = fmt.Sprintf("%s reset the connection (RST first seen at %s %s)",
				endpoint(f.Pkt.Src, f.Pkt.SPort), a.Points[f.Point].Label(a.Env.Primary()), f.Dir)
			s.Expected = a.modelIn(a.Points[f.Point])
			n, seen := lostAt(c, false, &req.Frames[len(req.Frames)-1])
			s.site = a.site(f.Point, f.Dir, -1, DirUnknown, n, seen, true)
			return s
		}
	}
	if c.Reply >= 0 {
		rep := c.Packets[c.Reply]
		lf := &rep.Frames[len(rep.Frames)-1]
		s := a.stopAt("reply "+FlagString(rep.Key.Proto, rep.Key.Flags), lf)
		first := a.Points[req.Frames[0].Point]
		s.Reason = fmt.Sprintf("the reply was last seen at %s %s (%s -> %s) and never reached %s",
			a.Points[lf.Point].Label(a.Env.Primary()), lf.Dir, endpoint(lf.Pkt.Src, lf.Pkt.SPort),
			endpoint(lf.Pkt.Dst, lf.Pkt.DPort), first.Label(a.Env.Primary()))
		s.Expected = a.nextSteps(lf, true, be)
		nx, nd := a.nextPoint(lf, true, be)
		n, seen := lostAt(c, true, lf)
		s.site = a.site(lf.Point, lf.Dir, nx, nd, n, seen, false)
		return s
	}
	lf := &req.Frames[len(req.Frames)-1]
	s := a.stopAt("request "+FlagString(req.Key.Proto, req.Key.Flags), lf)
	s.Reason = fmt.Sprintf("last seen at %s %s (%s -> %s); no hop saw it after, and no reply came",
		a.Points[lf.Point].Label(a.Env.Primary()), lf.Dir, endpoint(lf.Pkt.Src, lf.Pkt.SPort), endpoint(lf.Pkt.Dst, lf.Pkt.DPort))
	s.Expected = a.expectAt(lf, be)
	nx, nd := a.nextPoint(lf, false, be)
	n, seen := lostAt(c, false, lf)
	s.site = a.site(lf.Point, lf.Dir, nx, nd, n, seen, false)
	return s
}

// lostAt counts the packets of one direction of c last seen where last
// was, and when the first of them was seen there.
func lostAt(c *Conn, reply bool, last *Frame) (n int, seen int64) {
	for _, lp := range c.Packets {
		if lp.Reply != reply || len(lp.Frames) == 0 {
			continue
		}
		if f := &lp.Frames[len(lp.Frames)-1]; f.Point == last.Point && f.Dir == last.Dir {
			n++
			if seen == 0 || f.TS < seen {
				seen = f.TS
			}
		}
	}
	return n, seen
}

func (a *Analysis) stopAt(what string, f *Frame) *Stop {
	p := a.Points[f.Point]
	s := &Stop{Packet: what, Node: p.Node, Netns: p.Netns, Ifname: p.Ifname, Dir: f.Dir.String()}
	for _, h := range a.Env.hopsIn(p.Node, p.Netns) {
		if h.Kind == topology.HopBreak {
			s.Code = string(h.Code)
		}
	}
	return s
}

// expectAt lists what the model does to a request in the namespace it was
// last seen entering, then the next sighting the routes expect (unless
// the model's path breaks right there).
func (a *Analysis) expectAt(f *Frame, be *Backend) []string {
	var out []string
	if f.Dir != DirOut {
		out = a.modelIn(a.Points[f.Point])
	}
	for _, e := range out {
		if strings.Contains(e, breakText) {
			return out
		}
	}
	return append(out, a.nextSteps(f, false, be)...)
}

// modelIn describes the model's hops in a point's namespace.
func (a *Analysis) modelIn(p Point) []string {
	var out []string
	n := a.Env.Node(p.Node)
	var bs []topology.Backend
	if n != nil && n.Path != nil {
		bs = n.Path.Backends
	}
	for _, h := range a.Env.hopsIn(p.Node, p.Netns) {
		out = append(out, DescribeHop(h, bs))
	}
	if a.isTask(p) {
		out = append(out, a.siblingRedirect(p)...)
	}
	return out
}

// siblingRedirect points out a task that lacks the REDIRECT the other
// backends of the path have.
func (a *Analysis) siblingRedirect(p Point) []string {
	for _, h := range a.Env.hopsIn(p.Node, p.Netns) {
		if h.Kind == topology.HopRedirect {
			return nil
		}
	}
	for _, n := range a.Env.Nodes {
		if n.Path == nil {
			continue
		}
		for _, b := range n.Path.Backends {
			for _, h := range b.Hops {
				if h.Kind == topology.HopRedirect {
					return []string{fmt.Sprintf("%s: has no REDIRECT, while backend %s (%s) redirects to port %d (%s)",
						p.Netns, b.IP, h.Netns, h.ToPort, h.Rule)}
				}
			}
		}
	}
	return nil
}

func (a *Analysis) isTask(p Point) bool {
	n := a.Env.Node(p.Node)
	if n == nil {
		return false
	}
	ns := n.Model.Lookup(p.Netns)
	return ns != nil && ns.Role == topology.RoleTask
}

// nextSteps finds f's point on a route (one to the flow's backend when
// known) and names the sighting that should follow (the previous one for
// a reply, which travels the route backwards).
func (a *Analysis) nextSteps(f *Frame, reply bool, be *Backend) []string {
	r, i, ok := a.routeAt(f, reply, be)
	switch {
	case !ok:
		return nil
	case reply:
		if i == 0 {
			return nil
		}
		prev := r.Steps[i-1]
		return []string{fmt.Sprintf("next: %s %s (the request's hop before this one)",
			a.Points[prev.Point].Label(a.Env.Primary()), flip(prev.Dir))}
	case i+1 == len(r.Steps):
		return []string{a.delivery(f, r)}
	}
	nx := r.Steps[i+1]
	return []string{fmt.Sprintf("next: %s %s", a.Points[nx.Point].Label(a.Env.Primary()), nx.Dir)}
}

// nextPoint is the point (and direction) nextSteps names; -1 when the
// route ends at f or f is on none.
func (a *Analysis) nextPoint(f *Frame, reply bool, be *Backend) (int32, Dir) {
	r, i, ok := a.routeAt(f, reply, be)
	switch {
	case !ok:
		return -1, DirUnknown
	case reply:
		if i == 0 {
			return -1, DirUnknown
		}
		return int32(r.Steps[i-1].Point), flip(r.Steps[i-1].Dir)
	case i+1 == len(r.Steps):
		return -1, DirUnknown
	}
	return int32(r.Steps[i+1].Point), r.Steps[i+1].Dir
}

// routeAt finds f's step on a route (one to the flow's backend when
// known).
func (a *Analysis) routeAt(f *Frame, reply bool, be *Backend) (Route, int, bool) {
	var routes []Route
	for _, r := range a.Routes {
		if be == nil || r.Backend == be.IP {
			routes = append(routes, r)
		}
	}
	if len(routes) == 0 {
		routes = a.Routes
	}
	want := f.Dir
	if reply {
		// A reply crosses a point the other way: the request's step there
		// (a host's uplink is crossed in by the client's request and out
		// by the VXLAN to a remote backend).
		for _, r := range routes {
			for i, st := range r.Steps {
				if st.Point == int(f.Point) && want != DirUnknown && st.Dir == flip(want) {
					return r, i, true
				}
			}
		}
	}
	for _, r := range routes {
		for i, st := range r.Steps {
			if st.Point != int(f.Point) || (want != DirUnknown && st.Dir != want && !reply) {
				continue
			}
			return r, i, true
		}
	}
	return Route{}, 0, false
}

func flip(d Dir) Dir {
	switch d {
	case DirIn:
		return DirOut
	case DirOut:
		return DirIn
	}
	return d
}

// delivery says what should happen at a route's last step: a server of the
// task answering on the target port.
func (a *Analysis) delivery(f *Frame, r Route) string {
	n := a.Env.Node(r.Node)
	port := int(f.Pkt.DPort)
	if n != nil && n.Path != nil {
		for _, b := range n.Path.Backends {
			if b.IP.String() == r.Backend && b.TargetPort != 0 {
				port = b.TargetPort
			}
		}
	}
	return fmt.Sprintf("next: delivered to a server listening on %s", netip.AddrPortFrom(f.Pkt.Dst.Addr(), uint16(port)))
}

// conntrackFor attaches the conntrack entries of each namespace the flow
// crossed whose original or reply tuple is one the flow showed there.
func (a *Analysis) conntrackFor(c *Conn) []CTMatch {
	if len(a.Conntrack) == 0 {
		return nil
	}
	var out []CTMatch
	seen := map[string]bool{}
	for _, lp := range c.Packets {
		for i := range lp.Frames {
			f := &lp.Frames[i]
			p := a.Points[f.Point]
			k := nsKey(p.Node, p.Netns)
			t := TupleOf(&f.Pkt)
			if lp.Reply {
				t = t.Reverse()
			}
			for _, ct := range a.Conntrack[k] {
				if ct.Proto != ProtoName(t.Proto) || !(ctIs(ct.Orig, t) || ctIs(ct.Reply, t.Reverse())) {
					continue
				}
				m := CTMatch{Node: p.Node, Netns: p.Netns, Orig: ctString(ct.Orig), Reply: ctString(ct.Reply), State: ct.State, Mark: ct.Mark}
				if id := k + m.Orig; !seen[id] {
					seen[id] = true
					out = append(out, m)
				}
			}
		}
	}
	return out
}

func ctIs(ct topology.Tuple, t Tuple) bool {
	return IP4Of(ct.Src) == t.Src && IP4Of(ct.Dst) == t.Dst && ct.SPort == t.SPort && ct.DPort == t.DPort
}

func ctString(t topology.Tuple) string {
	return fmt.Sprintf("%s -> %s", netip.AddrPortFrom(t.Src, t.SPort), netip.AddrPortFrom(t.Dst, t.DPort))
}

// ipvsFor attaches IPVS connection entries whose client is one of the
// flow's request sources.
func (a *Analysis) ipvsFor(c *Conn) []IPVSMatch {
	if len(a.IPVS) == 0 {
		return nil
	}
	var out []IPVSMatch
	for _, lp := range c.Packets {
		if lp.Reply {
			continue
		}
		for i := range lp.Frames {
			f := &lp.Frames[i]
			p := a.Points[f.Point]
			for _, e := range a.IPVS[nsKey(p.Node, p.Netns)] {
				if e.Proto == ProtoName(f.Pkt.Proto) && IP4Of(e.Client.Addr()) == f.Pkt.Src && e.Client.Port() == f.Pkt.SPort {
					m := IPVSMatch{Node: p.Node, Netns: p.Netns, Entry: e}
					dup := false
					for _, x := range out {
						dup = dup || x == m
					}
					if !dup {
						out = append(out, m)
					}
				}
			}
		}
		break // the first request carries the tuples
	}
	return out
}
