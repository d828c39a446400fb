package pathview

import (
	"fmt"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/tui/delta"
	"github.com/meshtrace/meshtrace/tui/ui"
)

type boxKind int

const (
	kindClient boxKind = iota
	kindCross
	kindHop
	kindBackend
)

// box is one step of the whiteboard drawing.
type box struct {
	kind  boxKind
	netns string
	title string
	lines []string
	hop   *topology.Hop
	be    *topology.Backend
	// points are "netns/ifname" capture points a traced packet crosses
	// here (crossings); a hop box is seen when its namespace is.
	points  []string
	cross   [2]string // crossing: from and to netns
	bad     bool
	changed bool
	delta   uint64 // packets since the previous refresh
}

// build turns a path into the chain of boxes and the backends' boxes.
func build(m *topology.Model, p *topology.Path, ch delta.Set) (chain, backends []box) {
	chain = append(chain, clientBox(m, p))
	prev := p.From
	if prev == "" {
		prev = "host"
	}
	for i := range p.Hops {
		h := &p.Hops[i]
		if h.Netns != "" && h.Netns != prev {
			chain = append(chain, crossBox(m, prev, h.Netns))
		}
		if h.Netns != "" {
			prev = h.Netns
		}
		chain = append(chain, hopBox(h, ch))
	}
	for i := range p.Backends {
		backends = append(backends, backendBox(&p.Backends[i], portOr80(p.Port), ch))
	}
	return chain, backends
}

func clientBox(m *topology.Model, p *topology.Path) box {
	if p.VIP != "" {
		b := box{kind: kindClient, netns: p.From, title: nsLabel(m, p.From)}
		b.lines = []string{"calls VIP", fmt.Sprintf("→ %s:%d", p.VIP, portOr80(p.Port))}
		return b
	}
	return box{kind: kindClient, title: "client", lines: []string{"outside the node", fmt.Sprintf("→ :%d %s", p.Port, p.Proto)}}
}

func portOr80(p int) int {
	if p == 0 {
		return 80
	}
	return p
}

// nsLabel names a namespace the way operators know it: its Docker task
// when known.
func nsLabel(m *topology.Model, name string) string {
	if ns := m.Lookup(name); ns != nil && ns.Docker != nil && ns.Docker.Task != "" {
		return ns.Docker.Task
	}
	return name
}

// crossBox says how the packet gets from one namespace into the next: a
// bridge port, a veth, or an overlay's bridge.
func crossBox(m *topology.Model, from, to string) box {
	b := box{kind: kindCross, netns: from, cross: [2]string{from, to}}
	a := m.Lookup(from)
	if a == nil {
		b.title, b.lines = "?", []string{"→ " + to}
		return b
	}
	for _, l := range a.Links {
		if l.Peer == nil || l.Peer.Netns != to {
			continue
		}
		peer := to + "/" + l.Peer.Ifname
		b.points = []string{from + "/" + l.Name, peer}
		if l.Master != "" {
			b.title = l.Master
			b.points = append(b.points, from+"/"+l.Master)
			b.lines = []string{"bridge " + addrOf(a.Link(l.Master)), "→ " + peer}
		} else {
			b.title = "veth " + l.Name
			b.lines = []string{"veth pair", "→ " + peer}
		}
		return b
	}
	// through an overlay: a's leg and b's leg are ports of the same
	// overlay bridge.
	for _, l := range a.Links {
		if l.Peer == nil || l.Peer.Netns == "" {
			continue
		}
		o := m.Lookup(l.Peer.Netns)
		if o == nil || o.Role != topology.RoleOverlay {
			continue
		}
		for _, ol := range o.Links {
			if ol.Peer != nil && ol.Peer.Netns == to {
				b.title = "overlay " + ui.Short(o.Name, 12)
				net := ""
				if o.Docker != nil && o.Docker.Network != "" {
					net = " (" + o.Docker.Network + ")"
				}
				b.lines = []string{ol.Master + net, "→ " + to + "/" + ol.Peer.Ifname}
				b.points = []string{from + "/" + l.Name, o.Name + "/" + l.Peer.Ifname, o.Name + "/" + ol.Name, to + "/" + ol.Peer.Ifname}
				return b
			}
		}
	}
	b.title, b.lines = "routed", []string{"no direct link", "→ " + to}
	return b
}

func addrOf(l *topology.Link) string {
	if l == nil {
		return ""
	}
	for _, a := range l.Addrs {
		if a.Addr().Is4() {
			return a.String()
		}
	}
	return ""
}

func hopBox(h *topology.Hop, ch delta.Set) box {
	b := box{kind: kindHop, netns: h.Netns, title: h.Netns, hop: h}
	where := h.Table + "/" + h.Chain
	switch h.Kind {
	case topology.HopDNAT:
		b.lines = []string{"DNAT " + where, "→ " + h.To}
	case topology.HopMark:
		b.lines = []string{fmt.Sprintf("MARK %#x", h.Mark), where}
	case topology.HopIPVS:
		impl := "kernel IPVS"
		if h.Impl == "iptables" {
			impl = "iptables emulation"
		}
		if h.FWMark != 0 {
			b.lines = []string{fmt.Sprintf("IPVS FWM %d %s", h.FWMark, h.Scheduler), impl}
		} else {
			b.lines = []string{fmt.Sprintf("IPVS %s %s", h.VIP, h.Scheduler), impl}
		}
	case topology.HopSNAT, topology.HopMasquerade:
		b.lines = []string{strings.ToUpper(h.Kind) + " " + where, "→ " + h.To}
	case topology.HopRedirect:
		b.lines = []string{"REDIRECT " + where, fmt.Sprintf("→ port %d", h.ToPort)}
	case topology.HopBreak:
		b.bad = true
		b.title = ui.MarkLost + " BREAK " + h.Netns
		b.lines = ui.Wrap(h.Reason, 26)
		if len(b.lines) > 2 {
			b.lines = []string{b.lines[0], b.lines[1] + "…"}
		}
	case topology.HopUnknown:
		b.title = "? UNKNOWN " + h.Netns
		b.lines = ui.Wrap(h.Reason, 26)
		if len(b.lines) > 2 {
			b.lines = []string{b.lines[0], b.lines[1] + "…"}
		}
	case topology.HopRoute:
		b.lines = []string{"route → " + h.To, "via " + h.Dev}
	default:
		b.lines = []string{h.Kind, where}
	}
	if h.Rule != "" && h.Table != "" {
		if c, ok := ch.Rule(h.Netns, h.Table, h.Chain, h.Rule); ok {
			b.changed, b.delta = c.Highlight(), c.Delta
		}
	}
	return b
}

func backendBox(be *topology.Backend, port int, ch delta.Set) box {
	b := box{kind: kindBackend, be: be}
	who := be.Task
	if who == "" {
		who = "task"
	}
	if be.Netns != nil {
		b.netns = *be.Netns
		b.title = *be.Netns
		b.lines = []string{who + " " + be.IP, fmt.Sprintf("serves :%d", be.TargetPort)}
		if be.TargetPort == 0 {
			b.lines[1] = "serves ?"
		}
		for _, h := range be.Hops {
			switch h.Kind {
			case topology.HopRedirect:
				b.lines[1] = fmt.Sprintf("REDIRECT %d→%d", port, h.ToPort)
				if c, ok := ch.Rule(h.Netns, h.Table, h.Chain, h.Rule); ok {
					b.changed, b.delta = c.Highlight(), c.Delta
				}
			case topology.HopDNAT:
				b.lines[1] = "DNAT → " + h.To
			case topology.HopBreak:
				b.bad = true
				b.lines[1] = ui.MarkLost + " " + h.Reason
			case topology.HopUnknown:
				b.lines[1] = "? " + h.Reason
			}
		}
	} else {
		b.title = "remote node"
		b.lines = []string{be.IP, "over the overlay"}
		if be.VTEP != "" {
			b.lines[1] = "VXLAN → " + be.VTEP
		}
	}
	if be.Weight == 0 && !b.bad {
		b.lines[0] += " w0"
	}
	return b
}
