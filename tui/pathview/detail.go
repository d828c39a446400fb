package pathview

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/tui/delta"
)

// detail is what stands behind a box: the exact rule with its counters,
// the IPVS service with its real servers, the link, the backend.
func (m Model) detail(b box, limit int) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	switch b.kind {
	case kindClient:
		if m.path.VIP.IsValid() {
			add("east-west call from %s to service VIP %s port %d (%s)", m.path.From, m.path.VIP, portOr80(m.path.Port), m.path.Proto)
			add("c: start from another task")
		} else {
			add("a client outside the node connects to any node address, %s port %d", m.path.Proto, m.path.Port)
			add("(evaluated for 192.0.2.1:40000; every node answers on every published port)")
		}
	case kindCross:
		out = m.crossDetail(b)
	case kindHop:
		out = m.hopDetail(b.hop, limit)
	case kindBackend:
		out = m.backendDetail(b.be)
	}
	for _, n := range m.path.Notes {
		add("note: %s", n)
	}
	return out
}

func (m Model) crossDetail(b box) []string {
	out := []string{fmt.Sprintf("%s → %s: %s", b.cross[0], b.cross[1], b.title)}
	for _, p := range b.points {
		ns, ifn, _ := strings.Cut(p, "/")
		n := m.model.Lookup(ns)
		if n == nil {
			continue
		}
		if l := n.Link(ifn); l != nil {
			s := fmt.Sprintf("  %s/%s %s mtu %d", ns, l.Name, l.Kind, l.MTU)
			if a := addrOf(l); a != "" {
				s += " " + a
			}
			if !l.Up {
				s += " DOWN"
			}
			out = append(out, s)
		}
	}
	return out
}

func (m Model) hopDetail(h *topology.Hop, limit int) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	switch h.Kind {
	case topology.HopIPVS:
		return m.ipvsDetail(h, limit)
	case topology.HopBreak:
		add("the path breaks in %s:", h.Netns)
		add("%s", h.Reason)
		return out
	case topology.HopUnknown:
		add("not checked past %s (not collected):", h.Netns)
		add("%s", h.Reason)
		return out
	case topology.HopRoute:
		add("%s reaches %s via %s", h.Netns, h.To, h.Dev)
		add("%s", h.Reason)
		return out
	}
	where := fmt.Sprintf("%s  table %s  chain %s", h.Netns, h.Table, h.Chain)
	if h.Line > 0 {
		where += fmt.Sprintf("  (line %d)", h.Line)
	}
	add("%s", where)
	add("%s", h.Rule)
	out = append(out, m.counters(h.Netns, h.Table, h.Chain, h.Rule, h.Packets))
	return out
}

// counters reads the rule's counters from the current model (the path's
// copy may be older) and what moved since the previous refresh.
func (m Model) counters(netns, table, chain, text string, pkts uint64) string {
	s := fmt.Sprintf("counters: %d packets", pkts)
	if r := findRule(m.model, netns, table, chain, text); r != nil {
		if !r.HasCounters {
			s = "counters: not read (no -c)"
		} else {
			s = fmt.Sprintf("counters: %d packets, %d bytes", r.Packets, r.Bytes)
		}
	}
	if c, ok := m.changes.Rule(netns, table, chain, text); ok {
		switch {
		case c.Added:
			s += "   * new since the previous refresh"
		case c.Delta > 0:
			s += fmt.Sprintf("   +%d packets since the previous refresh", c.Delta)
		}
	}
	return s
}

func findRule(m *topology.Model, netns, table, chain, text string) *topology.Rule {
	ns := m.Lookup(netns)
	if ns == nil {
		return nil
	}
	c := ns.Firewall.Table(table).Chain(chain)
	if c == nil {
		return nil
	}
	for _, r := range c.All() {
		if r.Text == text {
			return r
		}
	}
	return nil
}

// ipvsDetail lists the service and its real servers, as many as fit in
// limit lines.
func (m Model) ipvsDetail(h *topology.Hop, limit int) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	ns := m.model.Lookup(h.Netns)
	svc := findService(ns, h)
	if svc == nil {
		add("%s: IPVS service not in the current reading", h.Netns)
		return out
	}
	if svc.FWMark != 0 {
		add("%s  IPVS  -A -f %d -s %s  (%s)", h.Netns, svc.FWMark, svc.Scheduler, svc.Impl)
	} else {
		add("%s  IPVS  -A -t %s:%d -s %s  (%s)", h.Netns, svc.Addr, svc.Port, svc.Scheduler, svc.Impl)
	}
	if svc.Persistent > 0 {
		add("persistent %d s", svc.Persistent)
	}
	if st := svc.Stats; st != nil {
		add("stats: %d conns, %d/%d packets in/out", st.Conns, st.InPkts, st.OutPkts)
	}
	for i, d := range svc.Dests {
		if len(out) >= limit-2 && i < len(svc.Dests)-1 {
			add("  … %d more real servers", len(svc.Dests)-i)
			break
		}
		w := fmt.Sprint(d.Weight)
		if d.WeightUnknown {
			w = "?"
		}
		s := fmt.Sprintf("  -> %s:%d %s weight %s active %d inactive %d", d.Addr, d.Port, d.Forward, w, d.ActiveConns, d.InactConns)
		if c, ok := m.changes.Dest(h.Netns, delta.SvcKey(svc), delta.DestKey(d)); ok {
			switch {
			case c.Added:
				s += "  * new"
			case c.Modified:
				s += "  * changed"
			case c.Delta > 0:
				s += fmt.Sprintf("  +%d conns", c.Delta)
			}
		}
		out = append(out, s)
	}
	if len(svc.Dests) == 0 {
		add("  no real servers")
	}
	for _, r := range svc.Rules {
		add("  rule: %s", r)
	}
	return out
}

func findService(ns *topology.Namespace, h *topology.Hop) *topology.IPVSService {
	if ns == nil {
		return nil
	}
	for _, s := range ns.LBServices() {
		if h.FWMark != 0 && s.FWMark == h.FWMark {
			return s
		}
		if h.FWMark == 0 && s.FWMark == 0 && netip.AddrPortFrom(s.Addr, uint16(s.Port)) == h.VIP {
			return s
		}
	}
	return nil
}

func (m Model) backendDetail(be *topology.Backend) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	add("real server %s:%d %s weight %d", be.IP, be.Port, be.Forward, be.Weight)
	switch {
	case be.Netns != nil:
		s := "in netns " + *be.Netns
		if be.In != "" {
			s += " on " + be.In
		}
		if be.Task != "" {
			s += fmt.Sprintf(", task %s of service %s", be.Task, be.Service)
		}
		add("%s", s)
	case be.VTEP.IsValid():
		add("on another node: sent over %s to VTEP %s (UDP 4789)", be.Via, be.VTEP)
	default:
		add("on another node (no FDB entry says which)")
	}
	if be.TargetPort != 0 {
		add("serves port %d", be.TargetPort)
	}
	for i := range be.Hops {
		h := &be.Hops[i]
		if h.Kind == topology.HopBreak {
			add("BREAK: %s", h.Reason)
			continue
		}
		add("%s %s/%s: %s", strings.ToUpper(string(h.Kind)), h.Table, h.Chain, h.Rule)
		out = append(out, "  "+m.counters(h.Netns, h.Table, h.Chain, h.Rule, h.Packets))
	}
	return out
}
